"""Property tests of the e-mails built from callback forms: whatever text a valid form
holds, the message is well formed (RFC 5322 §2.1.1 line length, CRLF line ends) and
carries exactly our headers, the form's text surviving the round trip."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from server.api_types import CallbackForm
from server.mailer import MailSettings, form_message

HEADERS = {"Subject", "Date", "Message-ID", "Reply-To", "From", "To", "Content-Type",
           "Content-Transfer-Encoding", "MIME-Version"}  # fmt: skip
SETTINGS = MailSettings.model_validate(
    {"smtp": {"host": "127.0.0.1"}, "from": "Centralino <c@servizi.test>"}
)
text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=200
)


@st.composite
def forms(draw: st.DrawFn) -> dict[str, object]:
    return {
        "service": "agenzia-lavoro",
        "surname": draw(text),
        "name": draw(text),
        "called_at": "2026-11-25T10:42:00+01:00",
        "person_sought": draw(text),
        "reason": draw(st.text(min_size=1, max_size=4000)),
        "phone": "+39 0461 123456",
        "email": draw(st.sampled_from([None, "a@b.test"])),
    }


@settings(max_examples=150, deadline=None)
@given(forms())
def test_any_valid_form_makes_a_well_formed_message(data: dict[str, object]) -> None:
    try:
        form = CallbackForm.model_validate(data)
    except ValidationError as exc:
        # Only blank names (stripped to nothing) may be refused here.
        assert all(error["type"] == "string_too_short" for error in exc.errors())
        return
    message = form_message(form, form_id=7, received=datetime(2026, 11, 25, 9, 43, tzinfo=UTC))
    message["From"] = SETTINGS.sender
    message["To"] = "r@servizi.test"
    raw = message.as_bytes(policy=policy.SMTP)
    lines = raw.split(b"\r\n")
    assert b"\n" not in b"".join(lines)  # CRLF only
    assert max(len(line) for line in lines) <= 998
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert set(parsed.keys()) <= HEADERS
    assert form.surname in str(parsed["Subject"])
    body = parsed.get_body()
    assert body is not None
    content = body.get_content()
    assert form.person_sought in content
    assert form.reason.replace("\r\n", "\n").replace("\r", "\n") in content.replace("\r\n", "\n")


@settings(max_examples=100, deadline=None)
@given(
    forms(), st.sampled_from(["surname", "name", "person_sought"]), st.sampled_from("\r\n\x00\x1b")
)
def test_a_control_character_in_a_one_line_field_is_refused(
    data: dict[str, object], field: str, control: str
) -> None:
    data[field] = f"Rossi{control}Bcc: victim@example.test"
    try:
        CallbackForm.model_validate(data)
    except ValidationError as exc:
        assert field in {str(error["loc"][0]) for error in exc.errors()}
    else:
        raise AssertionError(f"{field} with {control!r} was accepted")
