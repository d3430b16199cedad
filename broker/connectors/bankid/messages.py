"""BankID's recommended user messages (RFA codes) and which one a state calls for.

BankID requires RPs to show these texts so that people meet the same wording everywhere;
the mapping follows the table in reference/bankid-rp-v6.md §8. Anything unknown falls
back to RFA21 (still pending) or RFA22 (ended), so new hint or error codes from BankID
never leave a person without a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import INTERNAL_ERROR_CODES

Flow = Literal["qr", "autostart"]
DeviceKind = Literal["desktop", "mobile"]


@dataclass(frozen=True)
class UserMessage:
    rfa: str
    sv: str
    en: str

    def text(self, locale: str) -> str:
        return self.sv if locale.lower().startswith("sv") else self.en


def _m(rfa: str, sv: str, en: str) -> UserMessage:
    return UserMessage(rfa, sv, en)


_INSTALL = "https://install.bankid.com"

MESSAGES: dict[str, UserMessage] = {
    "RFA1": _m("RFA1", "Starta BankID-appen.", "Start your BankID app."),
    "RFA1-QR": _m(
        "RFA1",
        "Starta BankID-appen och läs av QR-koden.",
        "Start your BankID app and scan the QR code.",
    ),
    "RFA2": _m(
        "RFA2",
        "Du har inte BankID-appen installerad. Kontakta din bank.",
        "The BankID app is not installed. Please contact your bank.",
    ),
    "RFA3": _m("RFA3", "Åtgärden avbruten. Försök igen.", "Action cancelled. Please try again."),
    "RFA4": _m(
        "RFA4",
        "En identifiering eller underskrift för det här personnumret är redan påbörjad. "
        "Försök igen.",
        "An identification or signing for this personal number is already started. "
        "Please try again.",
    ),
    "RFA5": _m("RFA5", "Internt tekniskt fel. Försök igen.", "Internal error. Please try again."),
    "RFA6": _m("RFA6", "Åtgärden avbruten.", "Action cancelled."),
    "RFA8": _m(
        "RFA8",
        "BankID-appen svarar inte. Kontrollera att den är startad och att du har "
        "internetanslutning. Om du inte har något giltigt BankID kan du skaffa ett hos din "
        "bank. Försök sedan igen.",
        "The BankID app is not responding. Please check that it's started and that you have "
        "internet access. If you don't have a valid BankID you can get one from your bank. "
        "Try again.",
    ),
    "RFA9": _m(
        "RFA9",
        "Skriv in din säkerhetskod i BankID-appen och välj Identifiera eller Skriv under.",
        "Enter your security code in the BankID app and select Identify or Sign.",
    ),
    "RFA13": _m("RFA13", "Försöker starta BankID-appen.", "Trying to start your BankID app."),
    "RFA15A": _m(
        "RFA15A",
        "Söker efter BankID, det kan ta en liten stund … Om det har gått några sekunder och "
        "inget BankID har hittats har du sannolikt inget BankID som går att använda för den "
        "aktuella identifieringen/underskriften i den här datorn. Om du har ett BankID-kort, "
        "sätt in det i kortläsaren. Om du inte har något BankID kan du skaffa ett hos din bank.",
        "Searching for BankID, it may take a little while … If a few seconds have passed and "
        "still no BankID has been found, you probably don't have a BankID which can be used "
        "for this identification/signing on this computer. If you have a BankID card, please "
        "insert it into your card reader. If you don't have a BankID you can get one from "
        "your bank.",
    ),
    "RFA15B": _m(
        "RFA15B",
        "Söker efter BankID, det kan ta en liten stund … Om det har gått några sekunder och "
        "inget BankID har hittats har du sannolikt inget BankID som går att använda för den "
        "aktuella identifieringen/underskriften i den här enheten. Om du inte har något "
        "BankID kan du skaffa ett hos din bank.",
        "Searching for BankID, it may take a little while … If a few seconds have passed and "
        "still no BankID has been found, you probably don't have a BankID which can be used "
        "for this identification/signing on this device. If you don't have a BankID you can "
        "get one from your bank.",
    ),
    "RFA16": _m(
        "RFA16",
        "Det BankID du försöker använda är för gammalt eller spärrat. Använd ett annat "
        "BankID eller skaffa ett nytt hos din bank.",
        "The BankID you are trying to use is blocked or too old. Please use another BankID "
        "or get a new one from your bank.",
    ),
    "RFA17A": _m(
        "RFA17A",
        "BankID-appen verkar inte finnas i din dator eller telefon. Installera den och "
        f"skaffa ett BankID hos din bank. Installera appen från din appbutik eller {_INSTALL}.",
        "The BankID app couldn't be found on your computer or mobile device. Please install "
        "it and get a BankID from your bank. Install the app from your app store or "
        f"{_INSTALL}.",
    ),
    "RFA17B": _m(
        "RFA17B",
        "Misslyckades att läsa av QR-koden. Starta BankID-appen och läs av QR-koden. "
        "Kontrollera att BankID-appen är uppdaterad. Om du inte har BankID-appen måste du "
        "installera den och skaffa ett BankID hos din bank. Installera appen från din "
        f"appbutik eller {_INSTALL}.",
        "Failed to scan the QR code. Start the BankID app and scan the QR code. Check that "
        "the BankID app is up to date. If you don't have the BankID app, you need to install "
        "it and get a BankID from your bank. Install the app from your app store or "
        f"{_INSTALL}.",
    ),
    "RFA18": _m("RFA18", "Starta BankID-appen", "Start the BankID app"),
    "RFA19": _m(
        "RFA19",
        "Vill du identifiera dig eller skriva under med BankID på den här datorn eller med "
        "ett Mobilt BankID?",
        "Would you like to identify yourself or sign with a BankID on this computer, or with "
        "a Mobile BankID?",
    ),
    "RFA20": _m(
        "RFA20",
        "Vill du identifiera dig eller skriva under med ett BankID på den här enheten eller "
        "med ett BankID på en annan enhet?",
        "Would you like to identify yourself or sign with a BankID on this device or with a "
        "BankID on another device?",
    ),
    "RFA21": _m("RFA21", "Identifiering eller underskrift pågår.",
                "Identification or signing in progress."),
    "RFA22": _m("RFA22", "Okänt fel. Försök igen.", "Unknown error. Please try again."),
    "RFA23": _m(
        "RFA23",
        "Fotografera och läs av din ID-handling med BankID-appen.",
        "Process your machine readable travel document using the BankID app.",
    ),
}

_PENDING = {
    "noClient": "RFA1",
    "userMrtd": "RFA23",
    "userSign": "RFA9",
}
_FAILED = {
    "expiredTransaction": "RFA8",
    "certificateErr": "RFA16",
    "userCancel": "RFA6",
    "cancelled": "RFA3",
}
# RFA5: BankID had a problem and the person should just try again. Network failures to
# BankID (`connectionError`, our own code) are the same from the person's point of view.
_ERRORS = {
    "alreadyInProgress": "RFA4",
    "requestTimeout": "RFA5",
    "internalError": "RFA5",
    "maintenance": "RFA5",
    "tooManyRequests": "RFA5",
    "connectionError": "RFA5",
    "timeout": "RFA5",
}


def message(key: str) -> UserMessage:
    """A message by RFA code (e.g. for the device-choice screen, RFA19/RFA20)."""
    return MESSAGES[key]


def user_message(
    status: str | None = None,
    hint_code: str | None = None,
    error_code: str | None = None,
    flow: Flow = "qr",
    *,
    device: DeviceKind = "desktop",
) -> UserMessage | None:
    """The message for a collect answer or an error; None for `complete` (nothing to say).

    `flow` is how the order was started (QR on another device, or autostart on this one);
    `device` is what the person is on, for `started` (RFA15A on a computer, RFA15B on a phone).
    """
    if error_code is not None:
        if error_code in INTERNAL_ERROR_CODES:
            # Our integration is broken; not presented as a BankID problem (reference §8).
            return MESSAGES["RFA22"]
        return MESSAGES[_ERRORS.get(error_code, "RFA22")]
    if status == "complete":
        return None
    if status == "failed":
        if hint_code == "startFailed":
            return MESSAGES["RFA17B" if flow == "qr" else "RFA17A"]
        return MESSAGES[_FAILED.get(hint_code or "", "RFA22")]
    # pending, or a status BankID added after this was written: keep the person waiting.
    if hint_code == "outstandingTransaction":
        return MESSAGES["RFA1-QR" if flow == "qr" else "RFA13"]
    if hint_code == "started":
        return MESSAGES["RFA15B" if device == "mobile" else "RFA15A"]
    return MESSAGES[_PENDING.get(hint_code or "", "RFA21")]
