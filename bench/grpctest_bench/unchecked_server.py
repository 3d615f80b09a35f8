"""py-server without its check of requests: the same program, flags and event loop, with
the contract's validation (grpctest_server.validation) left out, so that the benchmark
can measure what the check costs per call against the real server in the same run.
One process. Not for use outside bench/: it answers requests that break the rules.
"""

from __future__ import annotations

import dataclasses
import logging

from grpctest_server import cli, lifecycle


def main() -> None:
    args = cli.parse_args()
    settings = dataclasses.replace(cli.settings_from(args), check_requests=False)
    logging.basicConfig(level=args.log_level)
    cli.EVENT_LOOPS[args.event_loop](lifecycle.serve(settings))


if __name__ == "__main__":
    main()
