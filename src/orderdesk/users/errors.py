from orderdesk.core.errors import Forbidden, InvalidInput, NotFound


class UserNotFound(NotFound):
    code = "user_not_found"
    title = "No such user"


class OwnRoleChange(Forbidden):
    code = "own_role_change"
    title = "Nobody can change their own role or deactivate themselves"


class WrongCurrentPassword(InvalidInput):
    code = "wrong_current_password"
    title = "The current password is wrong"

    def __init__(self) -> None:
        super().__init__(self.title, field=["current_password"])


class CurrentPasswordRequired(InvalidInput):
    code = "current_password_required"
    title = "Changing the password needs the current password"

    def __init__(self) -> None:
        super().__init__(self.title, field=["current_password"])
