"""The reply path: WeCom's callback, the batched inbox writer, the responder and the study ledger."""
