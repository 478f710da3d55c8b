"""Message templates: sandboxed rendering, syntax errors in Chinese, edited versions, sample contexts."""
