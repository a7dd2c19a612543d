"""Whatever an authenticated phone writes in Contact, Expires or To, the answer is a response."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from registrar_helpers import Phone, make_registrar

field_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["*", "<sip:1001@127.0.0.1:5070>;expires=", "<sip:1001@[::1]:5070>;q=0.7"]),
    st.builds(
        lambda p, e: f"<sip:1001@127.0.0.1:{p}>;expires={e}",
        st.integers(min_value=0, max_value=70000),
        st.text(alphabet="0123456789-x ", max_size=12),
    ),
)


@given(contacts=st.lists(field_text, max_size=4), expires=st.one_of(st.none(), field_text))
@settings(max_examples=120, deadline=None)
def test_contact_and_expires_never_raise(contacts: list[str], expires: str | None) -> None:
    registrar = make_registrar()
    phone = Phone()
    phone.register(registrar, now=0.0, contacts=[])  # picks up a nonce
    request = phone.request(contacts, None)
    if expires is not None:
        request.headers.add("Expires", expires)
    phone.authorize(request)
    response = registrar.handle_register(request, phone.source, now=1.0)
    assert response.status in {200, 400, 403, 423}
    if response.status != 200:
        assert registrar.lookup("1001") == []
    for binding in registrar.lookup("1001"):
        assert 0 < binding.expires_at - 1.0 <= 3600


@given(to=field_text, from_=field_text)
@settings(max_examples=100, deadline=None)
def test_to_and_from_never_raise(to: str, from_: str) -> None:
    registrar = make_registrar()
    phone = Phone()
    phone.register(registrar, now=0.0, contacts=[])
    request = phone.request(None, 600)
    request.headers.set("To", to)
    request.headers.set("From", from_)
    phone.authorize(request)
    response = registrar.handle_register(request, phone.source, now=1.0)
    assert response.status in {200, 400, 403, 404}
    assert (response.status == 200) == (len(registrar.lookup("1001")) == 1)
