"""Peers for the WeChat channel's tests: a Python fake gateway and the real TypeScript one."""
