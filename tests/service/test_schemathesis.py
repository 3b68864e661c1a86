"""schemathesis against the published OpenAPI spec, as an admin: no 500s (bounded:
a few generated requests per operation)."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error

from poisonguard.service import ServiceSettings
from tests.service.conftest import World

EXAMPLES = 6


def test_no_server_errors(tmp_path: Path) -> None:
    w = World(ServiceSettings(home=tmp_path / "home", max_upload_mb=0.5))
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", w.app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 20
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            def no_500(case: schemathesis.Case) -> None:
                response = case.call(headers=w.h("admin"))
                case.validate_response(response, checks=[not_a_server_error])

            no_500()
        assert w.service.store.ledger.verify() == []
    finally:
        w.close()
