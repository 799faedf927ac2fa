"""The session's throwaway OpenLDAP for the realm-level LDAP tests."""

from tests.fixtures.slapd import slapd  # noqa: F401  (a pytest fixture, used by name)
