"""The standard gRPC Health service: the library's servicer, plus List.

grpcio-health-checking's asyncio servicer answers Check and Watch; the health proto it
ships also declares List (all services and their status), which reflection advertises,
so it is answered here too, from the statuses the servicer itself reports.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2


class HealthServicer(health.aio.HealthServicer):
    """grpc.health.v1.Health: Check, Watch (the library's) and List."""

    def __init__(self) -> None:
        super().__init__()
        self._services = {""}  # "" (the whole server) is always there

    async def set(self, service: str, status: health_pb2.HealthCheckResponse.ServingStatus) -> None:
        self._services.add(service)
        await super().set(service, status)

    async def List(
        self, request: health_pb2.HealthListRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthListResponse:
        statuses = {}
        for service in sorted(self._services):
            check = health_pb2.HealthCheckRequest(service=service)
            statuses[service] = await self.Check(check, context)
        return health_pb2.HealthListResponse(statuses=statuses)
