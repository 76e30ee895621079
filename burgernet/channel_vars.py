"""The contract between Python and the dialplan: channel variables, contexts, AGI scripts.

Every name here is mirrored, letter for letter, in ``dialplans/*.conf``; the test
``tests/asterisk/test_dialplan_contract.py`` reads the dialplans and fails when a name used
there is missing here or the other way round. Change both together.
"""

from __future__ import annotations

from typing import Final

# --- AGI scripts (file names in ivr/, URL paths after agi://host:port/) ------------------
AGI_FREEPHONE: Final = "freephone"  # decides who handles a call to the free number
AGI_ALERT: Final = "alert"  # key presses in an answered alert call (1 talk, 9 opt out)
AGI_TIP: Final = "tip"  # registers a recorded tip and queues a call-back request
AGI_SCRIPTS: Final = (AGI_FREEPHONE, AGI_ALERT, AGI_TIP)
# Not a call flow (so not in AGI_SCRIPTS, nor in the dialplans): the supervisor's health probe
# connects with this script name and the server answers ``NOOP burgernet-healthy`` from its
# event loop (ivr/server.py), so a frozen process fails the probe.
AGI_HEALTH: Final = "healthz"

# --- Dialplan contexts --------------------------------------------------------------------
CTX_FREEPHONE: Final = "burgernet-freephone"  # calls from the trunk to the free number
CTX_ROUTE: Final = "burgernet-route"  # rings BN_TARGET_1..n in order, then the tip context
CTX_TIP: Final = "burgernet-tip"  # records a spoken tip
CTX_ALERT: Final = "burgernet-alert"  # an answered outbound alert call (AMI Originate)
CTX_FAILURE: Final = "burgernet-failure"  # FastAGI down or failed: the region pool, then a tip
CTX_NO_ACTION: Final = "burgernet-no-action"  # no action in the caller's area: spoken message
CTX_CENTRALISTS: Final = "burgernet-centralists"  # what centralist phones may dial
# Click-to-call from the worklist (AMI Originate): the centralist's leg, once answered, dials
# the citizen (EXTEN, national) over the trunk with the alert calls' caller ID.
CTX_CALLBACK: Final = "burgernet-callback"
# The centralist's desk (dialplans/desk.conf): subroutines Dial runs on each centralist's leg.
CTX_DESK_PREDIAL: Final = "burgernet-desk-predial"  # Dial b(): caller name + header, before the INVITE
CTX_DESK_WHISPER: Final = "burgernet-desk-whisper"  # Dial U(): names the action to the centralist only
CONTEXTS: Final = (
    CTX_FREEPHONE,
    CTX_ROUTE,
    CTX_TIP,
    CTX_ALERT,
    CTX_FAILURE,
    CTX_NO_ACTION,
    CTX_CENTRALISTS,
    CTX_CALLBACK,
    CTX_DESK_PREDIAL,
    CTX_DESK_WHISPER,
)

# --- Channel variables set by FastAGI, read by the dialplan -------------------------------
# BN_ROUTE says where the dialplan goes after the freephone/alert AGI returns.
VAR_ROUTE: Final = "BN_ROUTE"
ROUTE_DIAL: Final = "dial"  # ring BN_TARGET_1..BN_TARGET_COUNT, then record a tip
ROUTE_TIP: Final = "tip"  # nobody can answer now: record a tip, queue a call-back
ROUTE_NO_ACTION: Final = "no_action"  # no active action for this caller
ROUTE_REPEAT: Final = "repeat"  # alert call: play the message again
ROUTE_OPTED_OUT: Final = "opted_out"  # alert call: confirm the opt-out and hang up
ROUTE_FAILURE: Final = "failure"  # our error: the failure context takes over
ROUTES: Final = (ROUTE_DIAL, ROUTE_TIP, ROUTE_NO_ACTION, ROUTE_REPEAT, ROUTE_OPTED_OUT, ROUTE_FAILURE)

VAR_ACTION_ID: Final = "BN_ACTION_ID"  # the action the call is about ("" when none)
VAR_PARTICIPANT_ID: Final = "BN_PARTICIPANT_ID"  # the caller as a participant ("" when unknown)
VAR_REGION: Final = "BN_REGION"  # region code whose pool takes overflow
VAR_TARGET_COUNT: Final = "BN_TARGET_COUNT"  # how many ring steps follow
VAR_TARGET_PREFIX: Final = "BN_TARGET_"  # BN_TARGET_1 = "PJSIP/c-mn-1&PJSIP/c-mn-2"
VAR_TIMEOUT_PREFIX: Final = "BN_TIMEOUT_"  # BN_TIMEOUT_1 = ring seconds for that step
VAR_TIP_FILE: Final = "BN_TIP_FILE"  # recording path without extension, chosen by Python
VAR_REASON: Final = "BN_REASON"  # the routing decision's reason, for the log / CDR
# What the centralist's phone shows as the caller's name ("BN12 Vermist meisje"): made by
# burgernet.desk.phone_label (letters, digits, space, . - / only: it travels through MSet and
# as a Gosub argument of Dial's b() option, where , ^ ( ) | and quotes would break it).
VAR_ACTION_LABEL: Final = "BN_ACTION_LABEL"
# The action code that chose the action (the caller keyed it during the free number's welcome,
# ivr/freephone.py); set only then, for the Asterisk log and the CDR ("" otherwise).
VAR_ACTION_CODE: Final = "BN_ACTION_CODE"
# The SIP header on the INVITE to the centralist that names the action, for control-room software.
HEADER_ACTION: Final = "X-Burgernet-Action"
# BN_REASON when the dialplan's AGI deadline fired (the T extension next to every AGI() that
# runs while a caller waits): FastAGI accepted the call but did not finish in time.
REASON_AGI_TIMEOUT: Final = "agi_timeout"

# --- The AGI deadline (no silence longer than a few seconds) -------------------------------
# Asterisk has no read timeout once the FastAGI connection is up: a frozen server keeps the
# caller in silence for ever. So the dialplan arms the channel's absolute timeout right before
# AGI() (BN_AGI_DEADLINE seconds, with AGIEXITONHANGUP=yes so that AGI() returns when it fires)
# and its T extension sends the call to the failure path. While the flow is alive, FastAGI
# pushes the deadline forward before every prompt to cover that prompt plus
# AGI_DEADLINE_SECONDS (ivr/agi.py AgiSession.extend_deadline), so a server that freezes costs
# the caller at most that many seconds of silence after the last thing they heard.
AGI_DEADLINE_FUNCTION: Final = "TIMEOUT(absolute)"
AGI_DEADLINE_SECONDS: Final = 4
AGI_EXIT_ON_HANGUP: Final = "AGIEXITONHANGUP"  # Asterisk's own variable: yes = AGI() returns at once

# --- Set by the dialplan, read by Python (AMI events carry them: manager.conf channelvars) -
VAR_OUTCOME: Final = "BN_OUTCOME"  # connected | overflowed | tip_left | abandoned | failed
VAR_ANSWERED_BY: Final = "BN_ANSWERED_BY"  # the PJSIP endpoint that answered
VAR_DELIVERY_ID: Final = "BN_DELIVERY_ID"  # on alert calls: the Delivery being made
VAR_ALERT_SOUND: Final = "BN_ALERT_SOUND"  # on alert calls: the message to play (no extension)
VAR_CALL_KIND: Final = "BN_CALL_KIND"  # inbound | transfer | alert
# On alert calls: the short message left on an answering machine (title, action code, free
# number; TTS like BN_ALERT_SOUND, no extension). Set by the Originate, played only after AMD()
# said MACHINE and the greeting's beep is over.
VAR_MACHINE_SOUND: Final = "BN_MACHINE_SOUND"
# The number the trunk delivered (Request-URI or To user, FILTER()ed); the dialplan then
# carries on at the canonical free number (BN_FREE_NUMBER), which FastAGI and the CDR see.
VAR_CALLED_NUMBER: Final = "BN_CALLED_NUMBER"
# The FastAGI server the free-number flow is trying now: BN_AGI_URL, then BN_AGI_URL_BACKUP.
VAR_AGI_NOW: Final = "BN_AGI_NOW"

CALL_KIND_INBOUND: Final = "inbound"
CALL_KIND_TRANSFER: Final = "transfer"
CALL_KIND_ALERT: Final = "alert"
CALL_KIND_CALLBACK: Final = "callback"  # set by the worklist's Originate (burgernet/callbacks.py)
# On click-to-call legs: the worklist item being called back (for the log and AMI events).
VAR_CALLBACK_ITEM: Final = "BN_CALLBACK_ITEM"

# --- Answering-machine detection on alert calls (dialplans/alert.conf, settings [amd]) ------
# Right after AMD() the dialplan sends UserEvent(AMD_EVENT, ...) on the alert call's channel:
# the voice sender (broadcasting/channels/voice_asterisk.py) matches it by the channel's
# Uniqueid (the Originate's ChannelId) and ends the delivery "machine" or "answered". Its
# fields: AMD_FIELD_STATUS = AMDSTATUS (MACHINE | HUMAN | NOTSURE | HANGUP, or OFF when AMD is
# switched off), AMD_FIELD_CAUSE = AMDCAUSE, AMD_FIELD_MS = how long the analysis took (ms).
AMD_EVENT: Final = "BurgernetAmd"
AMD_FIELD_STATUS: Final = "AmdStatus"
AMD_FIELD_CAUSE: Final = "AmdCause"
AMD_FIELD_MS: Final = "AmdMs"
AMD_MACHINE: Final = "MACHINE"
AMD_OFF: Final = "OFF"

# Variables that manager.conf's `channelvars` adds to every AMI event.
AMI_CHANNEL_VARS: Final = (
    VAR_ACTION_ID,
    VAR_PARTICIPANT_ID,
    VAR_OUTCOME,
    VAR_ANSWERED_BY,
    VAR_DELIVERY_ID,
    VAR_CALL_KIND,
)

# --- Dialplan globals rendered from settings and the database -----------------------------
GLOBAL_AGI_URL: Final = "BN_AGI_URL"  # agi://127.0.0.1:4573
# A second FastAGI server (asterisk.agi_backup), tried before the failure path; empty: none.
GLOBAL_AGI_URL_BACKUP: Final = "BN_AGI_URL_BACKUP"
GLOBAL_FALLBACK_POOL: Final = "BN_FALLBACK_POOL"  # dial string of the fallback region's pool
GLOBAL_FALLBACK_TIMEOUT: Final = "BN_FALLBACK_TIMEOUT"
GLOBAL_TIP_DIR: Final = "BN_TIP_DIR"  # where Record() writes tips when FastAGI is down
GLOBAL_FREE_NUMBER: Final = "BN_FREE_NUMBER"  # the canonical form (asterisk.free_number)
# Every number that reaches the free-number flow, "&"-separated (asterisk_conf/numbers.py).
GLOBAL_FREE_NUMBERS: Final = "BN_FREE_NUMBERS"
# "request_uri" or "to": where the trunk puts the called number (asterisk.called_number_from).
GLOBAL_CALLED_NUMBER_FROM: Final = "BN_CALLED_NUMBER_FROM"
CALLED_NUMBER_FROM_REQUEST_URI: Final = "request_uri"
CALLED_NUMBER_FROM_TO: Final = "to"
GLOBAL_SOUNDS: Final = "BN_SOUNDS"  # absolute folder of the prompts: <BN_SOUNDS>/<lang>/burgernet/
# Seconds FastAGI gets before the first prompt (AGI_DEADLINE_SECONDS, see above).
GLOBAL_AGI_DEADLINE: Final = "BN_AGI_DEADLINE"
# "yes": the whisper (CTX_DESK_WHISPER) names the action to a centralist who answers
# (settings asterisk.desk_whisper); anything else: no whisper.
GLOBAL_DESK_WHISPER: Final = "BN_DESK_WHISPER"
# "yes": the old order, the "connecting" prompt first and then the ringing (3.6 s later);
# otherwise the centralist's phone rings at once and the caller hears the prompt while it rings
# (settings asterisk.connecting_prompt; kept so the benchmark measures the old order for real).
GLOBAL_PROMPT_FIRST: Final = "BN_PROMPT_FIRST"
# The music-on-hold class Dial's m() plays while the first step rings: the "connecting" prompt
# once, then a ringback tone (musiconhold.conf), one class per caller language.
MOH_CONNECTING_PREFIX: Final = "burgernet-connecting-"
# The caller ID of alert calls (asterisk.alert_caller_id / _name): what a called-back citizen sees.
GLOBAL_ALERT_CALLER_ID: Final = "BN_ALERT_CALLER_ID"
GLOBAL_ALERT_CALLER_NAME: Final = "BN_ALERT_CALLER_NAME"
# Answering-machine detection (settings [amd]): "yes" runs AMD() on every answered alert call
# (the voice sender's Originate sets a channel variable of the same name, which wins);
# its arguments, comma-separated in AMD()'s order (asterisk_conf/render.py amd_arguments; only
# ever the rendered global: AMI splits an Originate's Variable at commas); the silence (ms)
# that ends a machine's greeting and beep, and the longest wait for it (seconds).
GLOBAL_AMD: Final = "BN_AMD"
GLOBAL_AMD_ARGS: Final = "BN_AMD_ARGS"
GLOBAL_AMD_BEEP_SILENCE: Final = "BN_AMD_BEEP_SILENCE"
GLOBAL_AMD_BEEP_WAIT: Final = "BN_AMD_BEEP_WAIT"
GLOBALS: Final = (
    GLOBAL_AGI_URL,
    GLOBAL_AGI_URL_BACKUP,
    GLOBAL_FALLBACK_POOL,
    GLOBAL_FALLBACK_TIMEOUT,
    GLOBAL_TIP_DIR,
    GLOBAL_FREE_NUMBER,
    GLOBAL_FREE_NUMBERS,
    GLOBAL_CALLED_NUMBER_FROM,
    GLOBAL_SOUNDS,
    GLOBAL_AGI_DEADLINE,
    GLOBAL_ALERT_CALLER_ID,
    GLOBAL_ALERT_CALLER_NAME,
    GLOBAL_DESK_WHISPER,
    GLOBAL_PROMPT_FIRST,
    GLOBAL_AMD,
    GLOBAL_AMD_ARGS,
    GLOBAL_AMD_BEEP_SILENCE,
    GLOBAL_AMD_BEEP_WAIT,
)

# Outcomes of a call about an action (the callback log).
OUTCOME_CONNECTED: Final = "connected"
OUTCOME_OVERFLOWED: Final = "overflowed"
OUTCOME_TIP_LEFT: Final = "tip_left"
OUTCOME_ABANDONED: Final = "abandoned"
OUTCOME_FAILED: Final = "failed"
OUTCOME_NO_ACTION: Final = "no_action"
OUTCOMES: Final = (
    OUTCOME_CONNECTED,
    OUTCOME_OVERFLOWED,
    OUTCOME_TIP_LEFT,
    OUTCOME_ABANDONED,
    OUTCOME_FAILED,
    OUTCOME_NO_ACTION,
)


def target_var(step: int) -> str:
    return f"{VAR_TARGET_PREFIX}{step}"


def timeout_var(step: int) -> str:
    return f"{VAR_TIMEOUT_PREFIX}{step}"
