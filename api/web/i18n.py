"""German (default) and English texts of the pages, and which language a request gets.

The language is the ``waldstadt_lang`` cookie when it names one we have (set by the language
switch), else the best match of ``Accept-Language``, else German. Every text has both
languages: :func:`check_catalogue` is run by the tests.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request

LANG_COOKIE = "waldstadt_lang"
LANGUAGES = ("de", "en")
DEFAULT = "de"

TEXTS: dict[str, dict[str, str]] = {
    "app": {"de": "Waldstadt", "en": "Waldstadt"},
    "login": {"de": "Anmelden", "en": "Log in"},
    "logout": {"de": "Abmelden", "en": "Log out"},
    "username": {"de": "Benutzername", "en": "Username"},
    "password": {"de": "Passwort", "en": "Password"},
    "login_failed": {
        "de": "Benutzername oder Passwort falsch.",
        "en": "Wrong username or password.",
    },
    "login_slow_down": {
        "de": "Zu viele Versuche – bitte kurz warten.",
        "en": "Too many attempts – please wait a moment.",
    },
    "csrf_failed": {
        "de": "Das Formular ist abgelaufen. Bitte neu laden.",
        "en": "The form has expired. Please reload the page.",
    },
    "language": {"de": "Sprache", "en": "Language"},
    "role_operator": {"de": "Betrieb", "en": "Operator"},
    "role_member": {"de": "Mitglied", "en": "Member"},
    "role_lighting_engineer": {"de": "Lichtplanung", "en": "Lighting engineer"},
    "role_auditor": {"de": "Revision", "en": "Auditor"},
    "nav_member": {"de": "Mein Strom", "en": "My energy"},
    "nav_operator": {"de": "Gemeinschaft", "en": "Community"},
    "nav_lighting": {"de": "Straßenlicht", "en": "Street lighting"},
    "nav_audit": {"de": "Prüfprotokoll", "en": "Audit log"},
    "no_data": {"de": "Noch keine Daten.", "en": "No data yet."},
    "unread": {"de": "—", "en": "—"},
    # member
    "today": {"de": "Heute", "en": "Today"},
    "this_month": {"de": "Dieser Monat", "en": "This month"},
    "consumption": {"de": "Verbrauch", "en": "Consumption"},
    "own_pv": {"de": "Eigene PV", "en": "Own PV"},
    "shared_received": {"de": "Geteilt bezogen", "en": "Shared received"},
    "shared_delivered": {"de": "Geteilt geliefert", "en": "Shared delivered"},
    "grid_import": {"de": "Netzbezug", "en": "From the grid"},
    "grid_export": {"de": "Netzeinspeisung", "en": "To the grid"},
    "amount": {"de": "Betrag", "en": "Amount"},
    "co2_avoided": {"de": "CO₂ vermieden", "en": "CO₂ avoided"},
    "day": {"de": "Tag", "en": "Day"},
    "metered": {"de": "gemessen", "en": "metered"},
    "settled": {"de": "abgerechnet", "en": "settled"},
    "not_settled": {"de": "noch nicht abgerechnet", "en": "not settled yet"},
    "csv_download": {"de": "CSV herunterladen", "en": "Download CSV"},
    "per_qh_note": {
        "de": "kWh je Viertelstunde; aus den Abrechnungsständen des Tages.",
        "en": "kWh per quarter-hour; from the day's settlement versions.",
    },
    "member_of": {"de": "Mitglied", "en": "Member"},
    "substitutes": {"de": "Ersatzwerte", "en": "substitute values"},
    # operator
    "community_now": {"de": "Gemeinschaft jetzt", "en": "The community now"},
    "generation": {"de": "Erzeugung", "en": "Generation"},
    "sharing": {"de": "Geteilt", "en": "Shared"},
    "grid": {"de": "Netz (+ Bezug)", "en": "Grid (+ import)"},
    "feeder_headroom": {"de": "Reserve Ortsnetz", "en": "Feeder headroom"},
    "no_feeder_limit": {"de": "keine Grenze gesetzt", "en": "no limit set"},
    "refreshes": {"de": "aktualisiert alle 30 s", "en": "refreshes every 30 s"},
    "members_unread": {"de": "Zähler ohne Antwort", "en": "Meters not answering"},
    "no_runtime": {
        "de": "Kein laufender Dienst angebunden: keine Live-Werte.",
        "en": "No running service attached: no live values.",
    },
    "no_cycle": {"de": "Noch kein Messzyklus.", "en": "No cycle yet."},
    "plan_24h": {"de": "Fahrplan (24 h)", "en": "Plan (24 h)"},
    "plan_status": {"de": "Status", "en": "Status"},
    "objective": {"de": "Kosten über den Horizont", "en": "Cost over the horizon"},
    "violations": {"de": "Verletzte weiche Grenzen", "en": "Violated soft constraints"},
    "no_plan": {"de": "Noch kein Fahrplan.", "en": "No plan yet."},
    "plan_stale": {
        "de": "VERALTET: seit {minutes} min kein neuer Fahrplan",
        "en": "STALE: no new plan for {minutes} min",
    },
    "clock_slowed": {
        "de": "Simulation verlangsamt auf {speed}× (statt {target}×)",
        "en": "Simulation slowed to {speed}× (of {target}×)",
    },
    "machine_busy": {
        "de": "der Rechner ist ausgelastet",
        "en": "the machine is busy",
    },
    "battery_soc": {"de": "Batterie-Ladestand (kWh)", "en": "Battery charge (kWh)"},
    "ev_schedule": {"de": "Ladepläne E-Autos (kW)", "en": "EV charging schedules (kW)"},
    "community_grid": {"de": "Netz der Gemeinschaft (kW)", "en": "Community grid (kW)"},
    "assets": {"de": "Anlagen", "en": "Assets"},
    "all_assets": {"de": "Alle Anlagen", "en": "All assets"},
    "deletion_requests": {
        "de": "Offene Löschanträge (DSGVO)",
        "en": "Open deletion requests (GDPR)",
    },
    "deletion_how": {
        "de": "Ausführen mit POST /api/v1/privacy/erasures (siehe /docs).",
        "en": "Carry out with POST /api/v1/privacy/erasures (see /docs).",
    },
    "asset_device": {"de": "Gerät", "en": "Device"},
    "asset_member": {"de": "Mitglied", "en": "Member"},
    "asset_roles": {"de": "Funktion", "en": "Role"},
    "asset_now": {"de": "Jetzt", "en": "Now"},
    "asset_setpoints": {"de": "Sollwerte in Kraft", "en": "Setpoints in force"},
    "available": {"de": "verfügbar", "en": "available"},
    "unavailable": {"de": "nicht verfügbar", "en": "unavailable"},
    "alarms": {"de": "Alarme", "en": "Alarms"},
    "no_alarms": {"de": "Keine aktiven Alarme.", "en": "No active alarms."},
    "overrides": {"de": "Manuelle Vorgabe", "en": "Manual override"},
    "override_target": {"de": "Ziel (Sollwert)", "en": "Target (setpoint)"},
    "override_kind": {"de": "Art des Sollwerts", "en": "Kind of setpoint"},
    "override_value": {
        "de": "Wert (W, + = Laden; oder %)",
        "en": "Value (W, + = charge; or %)",
    },
    "override_expires": {"de": "Gültig (Minuten)", "en": "Valid for (minutes)"},
    "override_reason": {"de": "Grund", "en": "Reason"},
    "override_send": {"de": "Vorgabe senden", "en": "Send override"},
    "override_done": {
        "de": "Vorgabe gespeichert und protokolliert:",
        "en": "Override stored and audited:",
    },
    "override_bad": {"de": "Vorgabe abgelehnt:", "en": "Override refused:"},
    "recent_commands": {"de": "Letzte Vorgaben", "en": "Recent overrides"},
    # lighting
    "street": {"de": "Straße", "en": "Street"},
    "luminaire": {"de": "Leuchte", "en": "Luminaire"},
    "level": {"de": "Helligkeit", "en": "Level"},
    "reason": {"de": "Begründung", "en": "Reason"},
    "no_lighting": {
        "de": "Keine Beleuchtungskonfiguration.",
        "en": "No lighting configuration.",
    },
    "program_editor": {"de": "Programm-Editor", "en": "Program editor"},
    "program": {"de": "Programm", "en": "Program"},
    "step": {"de": "Schritt", "en": "Step"},
    "anchor": {"de": "Anker", "en": "Anchor"},
    "clock": {"de": "Uhrzeit", "en": "Clock"},
    "offset_min": {"de": "Versatz (min)", "en": "Offset (min)"},
    "ramp_s": {"de": "Rampe (s)", "en": "Ramp (s)"},
    "night_of": {"de": "Nacht vom", "en": "Night of"},
    "tonight": {"de": "Heute Nacht", "en": "Tonight"},
    "preview": {"de": "Vorschau", "en": "Preview"},
    "preview_energy": {"de": "Energie der Nacht", "en": "Energy of the night"},
    "savings": {"de": "Einsparung", "en": "Savings"},
    "year_energy": {"de": "Energie und Einsparung im Jahr", "en": "The year's energy and savings"},
    "segment": {"de": "Abschnitt", "en": "Segment"},
    "full_light": {"de": "Volllicht", "en": "Full light"},
    "energy": {"de": "Energie", "en": "Energy"},
    "add_step": {"de": "Schritt hinzufügen", "en": "Add step"},
    "remove": {"de": "Entfernen", "en": "Remove"},
    "save_program": {"de": "Programm speichern", "en": "Save program"},
    "program_saved": {"de": "Gespeichert:", "en": "Saved:"},
    "edited": {"de": "bearbeitet", "en": "edited"},
    "saved_program": {"de": "gespeichert", "en": "as stored"},
    "config_source": {"de": "Konfiguration", "en": "Configuration"},
    "lights_on": {"de": "Leuchten mit Meldung", "en": "Lights reporting"},
    "lighting_not_running": {
        "de": "Keine Lichtsteuerung läuft in diesem Prozess: Stufen und Meldungen unbekannt.",
        "en": "No lighting control runs in this process: levels and reports are not known.",
    },
    # audit
    "audit_chain": {"de": "Hash-Kette", "en": "Hash chain"},
    "chain_ok": {"de": "intakt", "en": "intact"},
    "chain_broken": {"de": "GEBROCHEN", "en": "BROKEN"},
    "records_checked": {"de": "geprüfte Einträge", "en": "records checked"},
    "records_unkeyed": {
        "de": "davon vor dem Audit-Schlüssel geschrieben (versiegelt)",
        "en": "of them written before the audit key (sealed)",
    },
    "audit_key_id": {"de": "Schlüssel", "en": "key"},
    "time_utc": {"de": "Zeit (UTC)", "en": "Time (UTC)"},
    "actor": {"de": "Wer", "en": "Actor"},
    "role": {"de": "Rolle", "en": "Role"},
    "action": {"de": "Aktion", "en": "Action"},
    "target": {"de": "Ziel", "en": "Target"},
    "result": {"de": "Ergebnis", "en": "Result"},
    "old_value": {"de": "Alter Wert", "en": "Old value"},
    "new_value": {"de": "Neuer Wert", "en": "New value"},
    "older": {"de": "Ältere", "en": "Older"},
    "forbidden": {
        "de": "Diese Seite ist für Ihre Rolle nicht freigegeben.",
        "en": "Your role may not open this page.",
    },
}

Translate = Callable[[str], str]


def parse_accept_language(header: str | None) -> str | None:
    """The first of our languages in ``Accept-Language`` by quality, or None."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, i, tag.strip().lower().split("-")[0]))
    for neg_q, _, lang in sorted(ranked):
        if neg_q < 0 and lang in LANGUAGES:
            return lang
    return None


def language(request: Request) -> str:
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in LANGUAGES:
        return cookie
    return parse_accept_language(request.headers.get("accept-language")) or DEFAULT


def translator(lang: str) -> Translate:
    def t(key: str) -> str:
        entry = TEXTS.get(key)
        if entry is None:
            raise KeyError(f"no text {key!r} in api.web.i18n.TEXTS")
        return entry[lang]

    return t


def check_catalogue() -> list[str]:
    """Keys that lack a language (empty when the catalogue is complete)."""
    return [k for k, v in TEXTS.items() if set(v) != set(LANGUAGES) or not all(v.values())]


__all__ = [
    "DEFAULT",
    "LANGUAGES",
    "LANG_COOKIE",
    "TEXTS",
    "check_catalogue",
    "language",
    "parse_accept_language",
    "translator",
]
