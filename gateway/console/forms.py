"""The console's forms: each carries Flask-WTF's CSRF token and checks its own fields."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from gateway.errors import InvalidRequestError
from gateway.store import billing
from gateway.store.logins import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from gateway.store.periods import PERIODS
from gateway.store.teams import MAX_NAME, ROLES
from gateway.store.users import check_email


def _email(_form: FlaskForm, field: StringField) -> None:
    try:
        field.data = check_email(field.data or "")
    except InvalidRequestError:
        raise ValidationError("Enter an email address such as ada@example.com.") from None


class UsdField(StringField):
    """An amount of USD typed by a person, read as integer micro-USD (None when left empty)."""

    def __init__(self, label: str, *, allow_negative: bool = False, **kwargs: Any) -> None:
        super().__init__(label, **kwargs)
        self.allow_negative = allow_negative

    @property
    def micros(self) -> int | None:
        raw = (self.data or "").strip().replace("$", "", 1)
        return billing.micros_from_usd(raw) if raw else None

    def pre_validate(self, form: FlaskForm) -> None:
        try:
            micros = self.micros
        except ValueError:
            raise ValidationError("Enter an amount of USD such as 5 or 0.25 (at most 6 decimals).") from None
        if micros is not None and micros < 0 and not self.allow_negative:
            raise ValidationError("The amount must not be negative.")


def _password_rules(form: FlaskForm, field: PasswordField) -> None:
    # Sign-up and the admin's user form name the account in a field; PasswordForm is told whose it is.
    email = form.email.data if "email" in form else form.account_email
    if (field.data or "").strip().lower() == (email or "").strip().lower():
        raise ValidationError("The password must not be your email address.")


def _new_password(label: str) -> PasswordField:
    """A password being chosen, held to the sign-up rules."""
    length = Length(
        min=MIN_PASSWORD_LENGTH,
        max=MAX_PASSWORD_LENGTH,
        message=f"Use {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters.",
    )
    return PasswordField(label, validators=[DataRequired(), length, _password_rules])


def _repeat(label: str) -> PasswordField:
    """The chosen password typed again."""
    return PasswordField(label, validators=[DataRequired(), EqualTo("password", "The passwords differ.")])


class SignUpForm(FlaskForm):
    email = StringField("Email", validators=[DataRequired(), _email])
    password = _new_password("Password")
    confirm = _repeat("Repeat the password")


class SignInForm(FlaskForm):
    email = StringField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired()])


class PasswordForm(FlaskForm):
    """A signed-in user's password change; the new one follows the sign-up rules."""

    current_password = PasswordField("Current password", validators=[DataRequired()])
    password = _new_password("New password")
    confirm = _repeat("Repeat the new password")

    def __init__(self, account_email: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.account_email = account_email


class CheckboxListField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class KeyForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    limit_usd = UsdField("Spend limit (USD)", validators=[Optional()])
    expires_on = DateField("Expires on", validators=[Optional()])
    models = CheckboxListField("Allowed models", choices=[], validate_choice=True)


class ConfirmForm(FlaskForm):
    """A form with nothing but its CSRF token: sign out, revoke."""


class CreditForm(FlaskForm):
    amount_usd = UsdField("Amount (USD)", allow_negative=True, validators=[DataRequired()])
    note = StringField("Note", validators=[Length(max=1000)])


class UserForm(FlaskForm):
    email = StringField("Email", validators=[DataRequired(), _email])
    password = PasswordField(
        "Password",
        validators=[
            DataRequired(),
            Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH),
            _password_rules,
        ],
    )
    is_admin = BooleanField("Administrator")


class MemberForm(FlaskForm):
    """An owner adds a member by email (an existing account), or changes a member's role."""

    email = StringField("Email", validators=[DataRequired(), _email])
    role = SelectField(
        "Role", choices=[SelectChoice(r, r.capitalize()) for r in ROLES[::-1]], default="member"
    )


class TeamKeyForm(FlaskForm):
    """A member's key on the team's balance and budget."""

    name = StringField("Name", validators=[DataRequired(), Length(max=200)])


class BudgetForm(FlaskForm):
    """A periodic budget; an empty amount means no budget."""

    budget_usd = UsdField("Budget (USD)", validators=[Optional()])
    period = SelectField("Period", choices=[SelectChoice(p, p) for p in PERIODS], default="month")


class TeamForm(BudgetForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=MAX_NAME)])
