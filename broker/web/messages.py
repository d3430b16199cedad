"""Texts of the pages, Swedish first. Connectors and the admin app bring their own (e.g.
BankID's RFA texts): each app's `Texts` holds the shared ones and what its parts added,
so two apps in one process (tests, the demo) never see each other's texts."""

from __future__ import annotations

from collections.abc import Mapping

LOCALES = ("sv", "en")

MESSAGES: Mapping[str, Mapping[str, str]] = {
    "sv": {
        "title": "Inloggning",
        "lang_switch": "In English",
        "choose_method": "Välj hur du vill logga in",
        "to_client": "Du loggar in till {client}",
        "method_bankid": "BankID",
        "method_siths": "SITHS-kort",
        "cancel": "Avbryt",
        "back": "Tillbaka",
        "continue": "Fortsätt",
        "error_title": "Något gick fel",
        "error_generic": "Inloggningen kunde inte slutföras. Gå tillbaka till tjänsten och försök igen.",
        "error_invalid_client": "Tjänsten som skickade dig hit är inte registrerad här. Kontakta tjänstens support.",
        "error_invalid_redirect": "Tjänsten skickade en ogiltig återadress. Kontakta tjänstens support.",
        "error_request": "Inloggningsbegäran var felaktig: {detail}. Gå tillbaka till tjänsten och försök igen.",
        "error_expired": "Inloggningen har tagit för lång tid eller är redan avslutad.",
        "error_wrong_browser": "Inloggningen startades i en annan webbläsare. Börja om i den här webbläsaren.",
        "error_csrf": "Formuläret hade gått ut. Ladda om sidan och försök igen.",
        "error_unavailable": "Tjänsten kan inte nå behörighetskällan just nu. Försök igen om en stund.",
        "error_too_large": "Begäran var för stor.",
        "error_rate_limited": "För många inloggningar har startats från din adress just nu. Vänta en minut och försök igen.",
        "denied_title": "Du saknar behörighet",
        "denied_text": "Du är inloggad som {name}, men har ingen giltig behörighet till {client}.",
        "denied_next": "Kontakta din chef eller kommunens IT-avdelning om du behöver behörighet. Tryck Tillbaka för att återvända till tjänsten.",
        "pick_title": "Välj roll och enhet",
        "pick_text": "Du har flera behörigheter till {client}. Välj den du vill arbeta i nu.",
        "pick_valid_to": "giltig till {date}",
        "logged_out_title": "Du är utloggad",
        "logged_out_text": "Du är nu utloggad. Stäng webbläsaren om du använder en delad dator.",
        "logout_confirm_title": "Logga ut?",
        "logout_confirm_text": "Vill du logga ut från alla tjänster du är inloggad i?",
        "logout_button": "Logga ut",
        "redirecting": "Du skickas vidare…",
        "noscript_continue": "Tryck Fortsätt om inget händer.",
        "try_again": "Försök igen",
        "other_method": "Välj ett annat sätt att logga in",
        "way_back_login": "Logga in i {client} igen",
        "way_back_service": "Tillbaka till {client}",
        "way_back_unknown": "Gå tillbaka till tjänsten du kom från och logga in där igen.",
        "expiry_warning": "Inloggningen avbryts om två minuter om du inte fortsätter.",
        "expiry_extend": "Jag behöver mer tid",
        "expiry_extended": "Du har fått mer tid att logga in.",
    },
    "en": {
        "title": "Log in",
        "lang_switch": "På svenska",
        "choose_method": "Choose how to log in",
        "to_client": "You are logging in to {client}",
        "method_bankid": "BankID",
        "method_siths": "SITHS card",
        "cancel": "Cancel",
        "back": "Back",
        "continue": "Continue",
        "error_title": "Something went wrong",
        "error_generic": "The login could not be completed. Go back to the service and try again.",
        "error_invalid_client": "The service that sent you here is not registered. Contact the service's support.",
        "error_invalid_redirect": "The service sent an invalid return address. Contact the service's support.",
        "error_request": "The login request was invalid: {detail}. Go back to the service and try again.",
        "error_expired": "The login took too long or has already ended.",
        "error_wrong_browser": "This login was started in another browser. Start again in this browser.",
        "error_csrf": "The form had expired. Reload the page and try again.",
        "error_unavailable": "The authorization source cannot be reached right now. Try again in a while.",
        "error_too_large": "The request was too large.",
        "error_rate_limited": "Too many logins have been started from your address just now. Wait a minute and try again.",
        "denied_title": "You have no authorization",
        "denied_text": "You are logged in as {name}, but have no valid authorization for {client}.",
        "denied_next": "Contact your manager or the municipality's IT department if you need access. Press Back to return to the service.",
        "pick_title": "Choose role and unit",
        "pick_text": "You have several authorizations for {client}. Choose the one you want to work in now.",
        "pick_valid_to": "valid until {date}",
        "logged_out_title": "You are logged out",
        "logged_out_text": "You are now logged out. Close the browser if you use a shared computer.",
        "logout_confirm_title": "Log out?",
        "logout_confirm_text": "Do you want to log out of every service you are logged in to?",
        "logout_button": "Log out",
        "redirecting": "Redirecting…",
        "noscript_continue": "Press Continue if nothing happens.",
        "try_again": "Try again",
        "other_method": "Choose another way to log in",
        "way_back_login": "Log in to {client} again",
        "way_back_service": "Back to {client}",
        "way_back_unknown": "Go back to the service you came from and log in there again.",
        "expiry_warning": "The login will be cancelled in two minutes unless you continue.",
        "expiry_extend": "I need more time",
        "expiry_extended": "You have more time to log in.",
    },
}


class Texts:
    """One app's texts: the shared ones above plus those its parts added at start-up."""

    def __init__(self, *parts: Mapping[str, Mapping[str, str]]) -> None:
        self._tables: dict[str, dict[str, str]] = {}
        for part in (MESSAGES, *parts):
            self.add(part)

    def add(self, extra: Mapping[str, Mapping[str, str]]) -> None:
        """A part's texts (the same keys in every locale), added while the app is built."""
        for locale, table in extra.items():
            self._tables.setdefault(locale, {}).update(table)

    def translate(self, locale: str, key: str, **values: object) -> str:
        """The text in `locale`, else in Swedish, else the key itself."""
        table = self._tables.get(locale) or self._tables["sv"]
        text = table.get(key) or self._tables["sv"].get(key) or key
        return text.format(**values) if values else text
