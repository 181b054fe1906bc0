from orderdesk.core.errors import Conflict, Forbidden, InvalidInput, Unauthorized


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    title = "Email or password is wrong"


class InvalidAccessToken(Unauthorized):
    code = "invalid_token"
    title = "The access token is missing, invalid or expired"


class InvalidRefreshToken(Unauthorized):
    code = "invalid_refresh_token"
    title = "The refresh token is invalid, expired or revoked"


class RefreshTokenReused(InvalidRefreshToken):
    # Reuse means the token leaked: the whole family is revoked, and that revocation
    # must be committed even though the request itself is refused.
    commit_changes = True
    code = "refresh_token_reused"
    title = "This refresh token was already used; the session has been revoked"


class InvalidOneTimeToken(InvalidInput):
    code = "invalid_token"
    title = "The token is invalid, expired or already used"

    def __init__(self) -> None:
        super().__init__(self.title, field=["token"])


class EmailTaken(Conflict):
    code = "email_taken"
    title = "An account with this email already exists"


class WeakPassword(InvalidInput):
    code = "weak_password"
    title = "The password is too weak"


class CsrfFailed(Forbidden):
    code = "csrf_failed"
    title = "A valid X-CSRF-Token header is required with cookie authentication"
