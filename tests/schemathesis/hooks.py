"""Schemathesis for grantflow (hostile input values), loaded with SCHEMATHESIS_HOOKS=hooks.

- `grantflow_answers`: no 5xx, and no GraphQL error with `extensions.code` INTERNAL or
  without a code. (Schemathesis's own `not_a_server_error` counts every GraphQL error as a
  failure, including the FORBIDDEN and NOT_FOUND that random ids rightly get, so it is
  not used.)
- Strategies for the custom scalars: dates and instants inside and far outside
  1900-01-01..2200-12-31, and JSON objects.
"""

import schemathesis
from hypothesis import strategies as st
from schemathesis.graphql import nodes


@schemathesis.check
def grantflow_answers(ctx, response, case):
    if response.status_code >= 500:
        raise AssertionError(f"server error {response.status_code}: {response.text[:300]}")
    try:
        body = response.json()
    except Exception:
        raise AssertionError(f"not JSON ({response.status_code}): {response.text[:300]}")
    for item in body if isinstance(body, list) else [body]:
        if not isinstance(item, dict):
            continue
        for error in item.get("errors") or []:
            code = (error.get("extensions") or {}).get("code")
            if code == "INTERNAL":
                raise AssertionError(f"INTERNAL error: {error.get('message')}")
            if code is None:
                raise AssertionError(f"an error without a code: {error.get('message')}")
    return None


_dates = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.sampled_from(["-0001-12-31", "+262142-12-31", "2201-01-01", "1899-12-31", "2024-02-30", ""]),
)
_instants = st.one_of(
    st.datetimes().map(lambda t: t.isoformat() + "Z"),
    st.sampled_from(["+262142-12-31T00:00:00Z", "1800-01-01T00:00:00Z", "not a time"]),
)

schemathesis.graphql.scalar("NaiveDate", _dates.map(nodes.String))
schemathesis.graphql.scalar("DateTime", _instants.map(nodes.String))
schemathesis.graphql.scalar(
    "JSON",
    st.one_of(
        st.just(nodes.Object([])),
        st.text(max_size=40).map(nodes.String),
        st.integers().map(nodes.Int),
    ),
)
