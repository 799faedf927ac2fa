from tests.fixtures.kerberos import kerberos_realm  # noqa: F401  (a pytest fixture, used by name)
