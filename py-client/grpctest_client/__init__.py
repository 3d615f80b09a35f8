"""The grpctest Python client.

calls   the library: calls over a channel (grpctest_common.channels), who answered them
resume  a broken stream or chat goes on on another replica, every reply once, in order
cli     the `grpctest-client` command: its settings table, printing, exit codes
"""
