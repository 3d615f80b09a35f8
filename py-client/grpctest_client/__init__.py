"""The grpctest Python client.

calls  the library: a channel to the target, calls, and who answered them
cli    the `grpctest-client` command: flags, printing, exit codes
"""
