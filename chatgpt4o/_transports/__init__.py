"""HTTP transports: the interface, curl_cffi, httpx, and a mock for tests."""
