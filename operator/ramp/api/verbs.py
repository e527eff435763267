"""The verbs a person (or a tool) uses to steer a Rollout: the one table.

Each verb is a CLI command, a dashboard button, an Argo CD action and a line of the docs.
A **token** verb is a one-shot request: the annotation ``ramp.dev/<verb>`` carrying a fresh
token, acted on once per token (``status.handledTokens`` records the last one); the others
change the spec (``spec.paused``).

What is derived from :data:`VERBS` (a new verb edits this table, the planner that acts on
it, and, for a token verb, one field of ``HandledTokens``):

* the token handling of the planner (``ramp.core.model.TOKEN_VERBS``);
* ``kubectl ramp``: the annotation's status key (``--wait``), and a plain command for a
  token verb without a command of its own (:attr:`Verb.cli`);
* the dashboard's buttons and the verbs its server accepts (each runs :attr:`Verb.cli`);
* the Argo CD actions: ``argocd/render.py`` writes the discovery lines (:attr:`Verb.icon`,
  :attr:`Verb.disabled`) and each token verb's ``action.lua``;

and checked against it by ``tests/unit/test_verb_table.py``: ``HandledTokens``'s fields
(the CRD's schema is generated from that model) and the lists in the docs.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic.alias_generators import to_camel

ANNOTATION_PREFIX = "ramp.dev"


@dataclass(frozen=True)
class Verb:
    """One verb of the table."""

    name: str
    """As users write it: ``kubectl ramp`` command, button, Argo CD action, annotation."""
    summary: str
    """One line: what it asks for (help texts and docs)."""
    token: bool
    """A one-shot request by annotation, recorded in ``status.handledTokens``."""
    cli: tuple[str, ...]
    """The ``kubectl ramp`` command line (before NAME) that makes the request."""
    icon: str
    """The Argo CD action's icon (Font Awesome class)."""
    disabled: str
    """When the Argo CD action is greyed out: a Lua expression over the locals of
    ``argocd/actions/discovery.lua`` (``inProgress``, ``aborted``, ``paused``, ...)."""

    @property
    def annotation(self) -> str:
        """The annotation of a token verb (``ramp.dev/promote-full``)."""
        return f"{ANNOTATION_PREFIX}/{self.name}"

    @property
    def field(self) -> str:
        """Its field of ``HandledTokens`` in Python (``promote_full``)."""
        return self.name.replace("-", "_")

    @property
    def status_key(self) -> str:
        """Its key in ``status.handledTokens`` (``promoteFull``)."""
        return to_camel(self.field)


VERBS: tuple[Verb, ...] = (
    Verb(
        "promote",
        "skip the current step (blue-green: grant the switch)",
        token=True,
        cli=("promote",),
        icon="fa fa-fw fa-forward",
        disabled="(not inProgress) or aborted or switched",
    ),
    Verb(
        "promote-full",
        "skip every remaining step (blue-green: switch without analysis)",
        token=True,
        cli=("promote", "--full"),
        icon="fa fa-fw fa-fast-forward",
        disabled="(not inProgress) or aborted",
    ),
    Verb(
        "abort",
        "back to the stable revision",
        token=True,
        cli=("abort",),
        icon="fa fa-fw fa-times-circle",
        disabled="(not inProgress) or aborted",
    ),
    Verb(
        "retry",
        "restart an aborted rollout",
        token=True,
        cli=("retry",),
        icon="fa fa-fw fa-redo-alt",
        disabled="not aborted",
    ),
    Verb(
        "pause",
        "hold the rollout where it is (spec.paused=true)",
        token=False,
        cli=("pause",),
        icon="fa fa-fw fa-pause-circle",
        disabled="paused",
    ),
    Verb(
        "resume",
        "let a paused rollout go on (removes spec.paused)",
        token=False,
        cli=("resume",),
        icon="fa fa-fw fa-play-circle",
        disabled="not paused",
    ),
    Verb(
        "rollback",
        "blue-green: flip the active Service back to the previous revision while it is warm",
        token=True,
        cli=("undo",),
        icon="fa fa-fw fa-undo",
        disabled="not canRollback",
    ),
)

BY_NAME = {verb.name: verb for verb in VERBS}
NAMES = tuple(BY_NAME)
"""Every verb's name, in the table's order (the dashboard's buttons, Argo CD's actions)."""
TOKEN_VERBS = tuple(verb.name for verb in VERBS if verb.token)
"""The verbs requested by a token annotation, in the table's order."""
