"""Development tooling: never imported by the product.

- ``services``: start real Redis, PostgreSQL, a Docker engine and a registry
  on loopback (``make test`` wraps pytest in it; ``make run`` uses it too);
- ``demo``: ``make run``, the whole product on embedded defaults;
- ``demo_clms``: the demo CLMS installation ``make run`` updates;
- ``demo_stack``: the demo CLMS images (built offline) and their helpers, used
  by ``make run`` and by the test suites.
"""
