"""The standard gRPC Health service: the library's servicer, plus List.

grpcio-health-checking's asyncio servicer answers Check and Watch; the health proto it
ships also declares List (all services and their status), which reflection advertises,
so it is answered here too. The servicer also tells the metrics what it reports.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthServicer(health.aio.HealthServicer):
    """grpc.health.v1.Health: Check, Watch (the library's) and List."""

    def __init__(self) -> None:
        super().__init__()
        # What the library's servicer reports, mirrored through its public methods.
        self._statuses = {"": SERVING}  # "" (the whole server) is SERVING from the start
        self._shutting_down = False

    async def set(self, service: str, status: health_pb2.HealthCheckResponse.ServingStatus) -> None:
        await super().set(service, status)
        if not self._shutting_down:  # the library ignores set() from then on, too
            self._statuses[service] = status

    async def enter_graceful_shutdown(self) -> None:
        await super().enter_graceful_shutdown()
        self._shutting_down = True
        self._statuses = dict.fromkeys(self._statuses, NOT_SERVING)

    def serving(self) -> dict[str, bool]:
        """Each service and whether it reports SERVING (for the metrics)."""
        return {service: status == SERVING for service, status in self._statuses.items()}

    async def List(
        self,
        request: health_pb2.HealthListRequest,
        context: grpc.aio.ServicerContext[
            health_pb2.HealthListRequest, health_pb2.HealthListResponse
        ],
    ) -> health_pb2.HealthListResponse:
        statuses = {
            service: health_pb2.HealthCheckResponse(status=status)
            for service, status in sorted(self._statuses.items())
        }
        return health_pb2.HealthListResponse(statuses=statuses)
