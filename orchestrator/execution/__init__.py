"""Carrying out a request: admission (route, reserve), attempts (call, observe), settlement."""
