"""Helpers every grpctest program (server, client, local run) shares."""
