"""grpctest's local run: replicas + Envoy as processes on loopback, no container engine.

localstack    start, watch and stop py-server and go-server replicas + Envoy as local processes
envoy_config  derive the local Envoy config from envoy/envoy.yaml
envoy         the `envoy` binary and its admin API (healthy hosts, stats)
processes     one supervised child process; signals as KeyboardInterrupt
clients       run the Python and Go clients, read their summaries
observability Prometheus and Jaeger beside the local stack (`make observe`)
browser       Chromium driven by Playwright: the web page's steps (`make screenshot`)
ports         free and busy loopback ports
waiting       the one polling helper
repo          where the repository's files are (this package is installed editable)
cli           the `grpctest-local` command (demo, run, screenshot)
"""
