"""What a person reads when a SITHS login did not work (sv first, en).

Every text says what happened and what to do next. Most say "close every browser window":
browsers remember the certificate chosen for a host for the rest of the browser session, so
without a restart the same (wrong, expired, revoked) certificate is sent again at once and the
person never sees the picker. Added to the app's texts when the connector is created;
the keys are the `SithsLoginFailure` codes (`validation.Outcome`) plus the connector's own.
"""

from __future__ import annotations

LINK_USED = "siths_link_used"
REJECTED_BY_PROXY = "siths_rejected"

MESSAGES: dict[str, dict[str, str]] = {
    "sv": {
        "siths_no_certificate": (
            "Inget SITHS-kort lästes. Kontrollera att kortet sitter i kortläsaren och att du valde "
            "ett certifikat när webbläsaren frågade. Webbläsaren kommer ihåg ditt val: stäng alla "
            "webbläsarfönster och börja om från tjänsten för att välja igen."),
        "siths_untrusted": (
            "Certifikatet du valde kommer inte från ett SITHS-kort som godtas här. Stäng alla "
            "webbläsarfönster, börja om från tjänsten och välj certifikatet från ditt SITHS-kort."),
        "siths_expired": (
            "Certifikatet på SITHS-kortet du valde gäller inte längre (eller gäller inte ännu). "
            "Kontakta den som delar ut SITHS-kort i din organisation för att få ett nytt kort. "
            "Har du ett annat kort: stäng alla webbläsarfönster och börja om med det kortet."),
        "siths_revoked": (
            "SITHS-kortet du valde är spärrat och kan inte användas. Kontakta den som delar ut "
            "SITHS-kort i din organisation. Har du ett annat kort: stäng alla webbläsarfönster och "
            "börja om med det kortet."),
        "siths_revocation_unknown": (
            "Det gick inte att kontrollera att ditt SITHS-kort inte är spärrat, så inloggningen "
            "stoppades. Försök igen om en stund. Hjälper inte det: stäng alla webbläsarfönster och "
            "välj ett annat kort eller ett annat sätt att logga in."),
        "siths_wrong_certificate": (
            "Du valde fel certifikat på kortet, till exempel underskriftscertifikatet. Stäng alla "
            "webbläsarfönster, börja om från tjänsten och välj certifikatet för legitimering "
            "(inloggning) när webbläsaren frågar."),
        "siths_reserve_not_allowed": (
            "Reservkort kan inte användas för att logga in här. Stäng alla webbläsarfönster och "
            "börja om med ditt ordinarie SITHS-kort, eller välj ett annat sätt att logga in."),
        LINK_USED: (
            "Den här inloggningslänken har redan använts eller har gått ut. Gå tillbaka till "
            "tjänsten och börja om."),
        REJECTED_BY_PROXY: (
            "Certifikatet du valde kunde inte användas, till exempel för att det har gått ut, "
            "inte kommer från ett SITHS-kort eller är underskriftscertifikatet. Stäng alla "
            "webbläsarfönster, börja om från tjänsten och välj certifikatet för legitimering "
            "från ditt SITHS-kort."),
    },
    "en": {
        "siths_no_certificate": (
            "No SITHS card was read. Check that the card is in the card reader and that you chose "
            "a certificate when the browser asked. The browser remembers your choice: close every "
            "browser window and start again from the service to choose again."),
        "siths_untrusted": (
            "The certificate you chose is not from a SITHS card accepted here. Close every browser "
            "window, start again from the service and choose the certificate from your SITHS card."),
        "siths_expired": (
            "The certificate on the SITHS card you chose is no longer valid (or not valid yet). "
            "Contact whoever issues SITHS cards in your organisation to get a new card. If you "
            "have another card, close every browser window and start again with that card."),
        "siths_revoked": (
            "The SITHS card you chose has been revoked and cannot be used. Contact whoever issues "
            "SITHS cards in your organisation. If you have another card, close every browser "
            "window and start again with that card."),
        "siths_revocation_unknown": (
            "We could not check that your SITHS card has not been revoked, so the login was "
            "stopped. Try again in a while. If that does not help, close every browser window and "
            "choose another card or another way to log in."),
        "siths_wrong_certificate": (
            "You chose the wrong certificate on the card, for example the signature certificate. "
            "Close every browser window, start again from the service and choose the "
            "authentication (login) certificate when the browser asks."),
        "siths_reserve_not_allowed": (
            "Reserve cards cannot be used to log in here. Close every browser window and start "
            "again with your ordinary SITHS card, or choose another way to log in."),
        LINK_USED: (
            "This login link has already been used or has expired. Go back to the service and "
            "start again."),
        REJECTED_BY_PROXY: (
            "The certificate you chose could not be used, for example because it has expired, "
            "is not from a SITHS card or is the signature certificate. Close every browser "
            "window, start again from the service and choose the authentication certificate "
            "from your SITHS card."),
    },
}

