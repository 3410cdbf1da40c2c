"""``promote`` and ``rollback`` hand their work to the running cockpit when a Prefect API is configured.

With ``PREFECT_API_URL`` set, the command submits a run of the cockpit's deployment
(``promote-prompt/promote-prompt``, ``rollback-prompt/rollback-prompt``) and returns at once with
the run's link in the UI: the run, its artifacts, Slack alerts and events are the cockpit's, as
if the button had been pressed there. Without it, the command runs the same core functions here
(``llmops.release.rollouts``), with no Prefect server and no Prefect import.

Prefect is imported only to submit, so a command that runs here starts fast.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from llmops import settings
from llmops.extras import install_hint

PROMOTE_DEPLOYMENT = "promote-prompt/promote-prompt"
ROLLBACK_DEPLOYMENT = "rollback-prompt/rollback-prompt"
REACH_TIMEOUT_SECONDS = 5.0
RAN_HERE = (
    f"ran here ({settings.PREFECT_API_URL} is not set): Slack alerted through the outbox, but no flow run and no Prefect event; "
    f"set {settings.PREFECT_API_URL} to submit to the cockpit instead"
)


class SubmitError(Exception):
    """The run could not be submitted; the message is one line saying what to do."""


def api_url() -> str | None:
    """The Prefect API the commands submit to (``PREFECT_API_URL``), or None to run here.

    Example:
        >>> import os; os.environ.pop("PREFECT_API_URL", None) and None; api_url() is None
        True
    """
    return settings.env(settings.PREFECT_API_URL)


def ui_url(api: str) -> str:
    """The Prefect UI beside ``api``: ``PREFECT_UI_URL``, else the API's URL without ``/api``.

    Example:
        >>> import os; os.environ.pop("PREFECT_UI_URL", None) and None; ui_url("http://127.0.0.1:4200/api/")
        'http://127.0.0.1:4200'
    """
    configured = settings.env(settings.PREFECT_UI_URL)
    if configured:
        return configured.rstrip("/")
    return api.rstrip("/").removesuffix("/api")


def _first_line(exc: BaseException) -> str:
    line = next((part.strip() for part in str(exc).splitlines() if part.strip()), "")
    return f"{line} ({type(exc).__name__})" if line else type(exc).__name__


def _check_reachable(api: str, deployment: str) -> None:
    """Fail at once when nothing answers at ``api`` (Prefect's client would retry for a while).

    Any HTTP answer, even an error, means something listens: Prefect then says what is wrong.
    """
    try:
        with urllib.request.urlopen(f"{api.rstrip('/')}/health", timeout=REACH_TIMEOUT_SECONDS):
            pass
    except urllib.error.HTTPError:
        return
    except (OSError, ValueError) as exc:  # URLError (refused, unknown host), a timeout, a malformed URL
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise SubmitError(
            f"could not submit {deployment}: nothing answers at the Prefect API {api} ({reason}); "
            f"start the cockpit (`make serve`), or unset {settings.PREFECT_API_URL} to run here"
        ) from None


def submit(deployment: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """Create a run of ``deployment`` on the configured Prefect API and return without waiting.

    Args:
        deployment: ``flow-name/deployment-name``.
        parameters: The run's parameters, JSON-compatible.

    Returns:
        ``deployment``, ``flow_run_id``, ``flow_run_name``, ``state`` and ``url`` (the run in the UI).

    Raises:
        SubmitError: No API configured, Prefect not installed, the API unreachable, the
            deployment missing or the parameters refused; one line, naming what to do.
    """
    api = api_url()
    if api is None:
        raise SubmitError(f"{settings.PREFECT_API_URL} is not set: no cockpit to submit {deployment} to")
    _check_reachable(api, deployment)
    try:
        from prefect.deployments import run_deployment
        from prefect.exceptions import ObjectNotFound
    except ModuleNotFoundError as exc:
        hint = install_hint(exc.name) or f"install {exc.name}"
        raise SubmitError(
            f"{settings.PREFECT_API_URL} is set but Prefect is not installed ({hint}); unset it to run here"
        ) from None
    try:
        run = run_deployment(deployment, parameters=parameters, timeout=0, as_subflow=False)
    except ObjectNotFound:
        raise SubmitError(
            f"the Prefect API at {api} has no deployment {deployment}: start the cockpit (`make serve`), "
            f"or unset {settings.PREFECT_API_URL} to run here"
        ) from None
    except Exception as exc:  # unreachable, refused parameters, auth: one line, the traceback under --debug
        raise SubmitError(
            f"could not submit {deployment} to the Prefect API at {api}: {_first_line(exc)}; "
            f"check that the cockpit runs (`make serve`), or unset {settings.PREFECT_API_URL} to run here"
        ) from exc
    return {
        "deployment": deployment,
        "flow_run_id": str(run.id),
        "flow_run_name": run.name,
        "state": run.state.name if run.state else None,
        "url": f"{ui_url(api)}/runs/flow-run/{run.id}",
    }


def submitted_line(run: dict[str, Any]) -> str:
    """What ``promote`` and ``rollback`` print after submitting: the run, its state and its link.

    Example:
        >>> submitted_line({"deployment": "rollback-prompt/rollback-prompt", "flow_run_name": "calm-fox",
        ...                 "state": "Scheduled", "url": "http://127.0.0.1:4200/runs/flow-run/1"})
        'submitted rollback-prompt/rollback-prompt run calm-fox (Scheduled); follow it at http://127.0.0.1:4200/runs/flow-run/1'
    """
    return f"submitted {run['deployment']} run {run['flow_run_name']} ({run['state']}); follow it at {run['url']}"
