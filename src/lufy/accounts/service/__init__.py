"""The accounts application service: load state, decide, append with inline projections.

Transactions run as `system` where the caller is not yet known (sign-up, sign-in, e-mailed
tokens, refresh) or where the service itself fixes whose rows are touched (password change);
reads on behalf of a signed-in user run in that user's context, so Row-Level Security is the
last word on what they see.

`AccountService` is one object composed of one mixin per concern, each in its own module:

- `registration`: sign-up, `lufy users create`, e-mail verification;
- `signin`: password sign-in (and its recorded failures), refresh-token rotation;
- `links`: magic links, forgotten and changed passwords;
- `sessions`: the user's sessions, revocation, and `authenticate` (every request);
- `erasure`: finding an account, the proof an erasure needs, the erasure itself;

on `base.AccountsBase`, which holds the dependencies, the transactions, the append (personal
fields sealed, password hashes to `lufy.credentials`) and session start/revocation. Mixins
rather than separate objects: the concerns share one state that callers set on the service
(`clock` in tests, `session_check_ttl` in benchmarks, the live-session cache that a revocation
anywhere must update), and `AccountService` keeps its one constructor and its methods; rather
than module functions, because a delegating class would repeat every signature.
"""

from __future__ import annotations

from lufy.accounts.service.erasure import Erasure
from lufy.accounts.service.links import LinksAndPasswords
from lufy.accounts.service.registration import ROLES, Registration
from lufy.accounts.service.sessions import Sessions
from lufy.accounts.service.signin import SignIn

__all__ = ["ROLES", "AccountService"]


class AccountService(Registration, SignIn, LinksAndPasswords, Sessions, Erasure):
    """Accounts: sign-up, sign-in, sessions, e-mailed links, passwords, erasure."""
