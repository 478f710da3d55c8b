"""Everything that knows WeCom's protocol: the API client and errcodes, the callback's crypto and XML."""
