"""Guard for rclpy's parameter services: a malformed request must not stop the node.

rclpy's SetParameters handler turns each request's ParameterValue into a Parameter; an invalid
type id (any client can send one: ``{type: 99}``) raises ValueError inside the executor, which
ends ``rclpy.spin`` and with it the node. The cause is upstream (rclpy); here each set-parameter
service's callback is wrapped so such a request is answered as failed, with the reason, and
the node goes on.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from rcl_interfaces.msg import SetParametersResult
from rcl_interfaces.srv import SetParameters, SetParametersAtomically

REASON = "malformed request ({}: {}); nothing was set"


def _guarded(callback: Callable[[Any, Any], Any], atomic: bool, on_error: Callable[[str], None]
             ) -> Callable[[Any, Any], Any]:
    def guarded(request: Any, response: Any) -> Any:
        try:
            return callback(request, response)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            reason = REASON.format(type(exc).__name__, exc)
            on_error(reason)
            failed = SetParametersResult(successful=False, reason=reason)
            if atomic:
                response.result = failed
            else:
                response.results = [failed for _ in request.parameters]
            return response

    return guarded


def guard_parameter_services(services: Iterable[Any], on_error: Callable[[str], None]) -> int:
    """Wrap the callbacks of the SetParameters and SetParametersAtomically services among
    ``services`` (a node's ``services``); ``on_error(reason)`` is told of each malformed
    request. Returns how many were wrapped."""
    wrapped = 0
    for service in services:
        if service.srv_type in (SetParameters, SetParametersAtomically):
            service.callback = _guarded(service.callback, service.srv_type is SetParametersAtomically, on_error)
            wrapped += 1
    return wrapped
