"""grpctest's development tooling: the local run and what the tests need.

localstack    start, watch and stop py-server replicas + Envoy as local processes
envoy_config  derive the local Envoy config from envoy/envoy.yaml
envoy         the `envoy` binary and its admin API (healthy hosts, stats)
processes     one supervised child process; signals as KeyboardInterrupt
clients       run the Python and Go clients, read their summaries
load          concurrent client load: Python (grpc.aio) and Go (ghz) callers
faults        fault drills: kill, freeze or restart replicas under load, and measure
compose       a docker compose project as the tests drive it
docker_engine a Docker engine for tests: started if none runs, stopped again
base_images   offline stand-ins for the public base images (`grpctest-base-images`)
ports         free and busy loopback ports
waiting       the one polling helper
repo          where the repository's files are (this package is installed editable)
cli           the `grpctest-local` command (demo, run)
protoc_gen_grpc_python  gRPC's Python generator as a protoc plugin, for buf generate
"""
