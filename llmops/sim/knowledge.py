"""What the simulated model "knows": Acme Corp's support policies and a code reviewer's checks.

Plain data tables, so a reader can see (and an evaluation can assert) exactly which facts a
complete answer contains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    """A support topic: words that reveal it, the helpful reply, and its policy facts."""

    name: str
    keywords: tuple[str, ...]
    reply: str
    facts: tuple[str, ...]
    complex_case: bool = False
    order_number_request: str | None = None
    """Said after ``reply`` when the system prompt tells the assistant to ask for the order number."""


SUPPORT_TOPICS: tuple[Topic, ...] = (
    Topic(
        name="refund",
        keywords=("refund", "money back", "return", "reimburse", "send it back"),
        reply="I can help you with a refund.",
        order_number_request="Please share your order number so I can start the request.",
        facts=(
            "Refunds are available within 30 days of purchase with a receipt or order number.",
            "Approved refunds are processed within 5-7 business days to the original payment method.",
            "Items must be unused and in their original packaging.",
            "Shipping costs are non-refundable unless the item arrived damaged.",
        ),
    ),
    Topic(
        name="shipping",
        keywords=("shipping", "ship", "delivery", "deliver", "arrive", "courier", "express"),
        reply="Happy to help with your delivery question.",
        facts=(
            "Standard shipping takes 3-5 business days.",
            "Express shipping takes 1-2 business days and costs $14.99.",
            "Orders over $50 ship free with standard shipping.",
            "A tracking number is emailed as soon as the order ships.",
        ),
    ),
    Topic(
        name="password_reset",
        keywords=("password", "log in", "login", "sign in", "locked out", "reset", "can't access"),
        reply="I can help you get back into your account.",
        facts=(
            "Use the 'Forgot password' link on the sign-in page to receive a reset email.",
            "Password reset links expire after 24 hours.",
            "After 5 failed sign-in attempts the account is locked for 30 minutes.",
        ),
    ),
    Topic(
        name="billing",
        keywords=("bill", "billing", "charge", "charged", "invoice", "payment", "subscription", "overcharged"),
        reply="I can look into your billing question.",
        facts=(
            "Invoices are available under Account > Billing.",
            "Duplicate charges are reversed within 3-5 business days once confirmed.",
            "Subscriptions can be cancelled at any time; access continues until the end of the billing period.",
        ),
        complex_case=True,
    ),
    Topic(
        name="account_deletion",
        keywords=("delete my account", "close my account", "account deletion", "delete", "remove my data", "gdpr"),
        reply="I can help you delete your account.",
        facts=(
            "Account deletion becomes permanent after a 14-day grace period.",
            "You can export your data from Settings > Privacy before deleting the account.",
            "Deletion must be confirmed from the email address on the account.",
        ),
        complex_case=True,
    ),
    Topic(
        name="order_status",
        keywords=("order status", "where is my order", "my order", "track", "tracking", "hasn't arrived"),
        reply="Let me check on your order.",
        order_number_request="Please share your order number.",
        facts=(
            "Order status is shown under Account > Orders.",
            "Orders are processed within 1 business day before they ship.",
            "Orders can be changed or cancelled until they ship.",
        ),
    ),
    Topic(
        name="product",
        keywords=("product", "warranty", "size", "compatible", "specs", "feature", "in stock", "restock", "manual"),
        reply="Happy to answer your product question.",
        facts=(
            "All Acme products carry a 1-year limited warranty.",
            "Out-of-stock items usually restock within 2 weeks.",
            "Product manuals are on each product page under Support.",
        ),
    ),
    Topic(
        name="gift_card",
        keywords=("gift card", "gift cards", "store credit", "voucher", "e-gift"),
        reply="Happy to help with your gift card question.",
        facts=(
            "Acme gift cards never expire and carry no fees.",
            "Gift cards cannot be exchanged for cash or refunded.",
            "A lost gift card can be replaced with its 16-digit card number and the original receipt.",
            "Store credit from a return is emailed as an e-gift card within 1 business day.",
        ),
    ),
    Topic(
        name="price_adjustment",
        keywords=("price match", "price drop", "price adjustment", "cheaper", "lower price", "price went down", "on sale"),
        reply="I can help you with a price adjustment.",
        facts=(
            "If an item's price drops within 14 days of purchase, Acme refunds the difference once per item.",
            "Price adjustments are not given for clearance items or flash sales.",
            "Price differences are credited to the original payment method within 5-7 business days.",
        ),
    ),
    Topic(
        name="international",
        keywords=("international", "overseas", "abroad", "customs", "import tax", "duties", "outside the us"),
        reply="Happy to help with your international order.",
        facts=(
            "Acme ships to 38 countries, and international delivery takes 7-14 business days.",
            "Customs duties and import taxes are paid by the customer on delivery.",
            "International orders over $150 ship free.",
            "International returns must be posted within 45 days, at the customer's expense.",
        ),
    ),
)

GENERAL_TOPIC = Topic(
    name="general",
    keywords=(),
    reply="I'm happy to help. Could you tell me a little more about what you need?",
    facts=(),
)

ANGER_MARKERS: tuple[str, ...] = (
    "angry", "furious", "unacceptable", "ridiculous", "terrible", "worst", "outraged", "scam",
    "lawyer", "disgusting", "fed up", "sick of", "!!",
)  # fmt: skip

OPENERS = {
    "calm": ("Thanks for reaching out to Acme Corp.", "Thank you for contacting Acme Corp support.", "Hi there!"),
    "angry": (
        "I'm truly sorry for the frustration this has caused.",
        "I understand how upsetting this is, and I apologise.",
        "I'm sorry you've had this experience; let's fix it.",
    ),
}
ESCALATION_OFFER = "If you prefer, I can escalate this to a human support agent who will follow up within 24 hours."
ESCALATION_OFFER_WITHOUT_TIME = "If you prefer, I can escalate this to a human support agent."
ORDER_NUMBER_INSTRUCTION = re.compile(r"\b(?:ask|request)\w*\b(?:\W+\w+){0,4}?\W+number\b", re.I)
"""The instruction to ask for the (order) number, as a system prompt or what compression left of it words it."""
ESCALATION_FOLLOW_UP = "A human support agent follows up within 24 hours."
"""The fact behind the offer's promise: stated only when the system prompt states it."""
CLOSING = "Is there anything else I can help you with?"
REFUSAL = "I'm sorry, but I can't help with that request. Please contact Acme Corp support directly."
VERBOSE_OPENER = (
    "Thank you so much for taking the time to write to us today! I completely understand how important "
    "this is to you, and I want to make sure I give you a thorough and complete answer."
)
VERBOSE_CLOSER = (
    "Please don't hesitate to reach out again if you have any other questions, comments or concerns at all; "
    "we are always here and always happy to help you in any way we can."
)


@dataclass(frozen=True)
class CodeCheck:
    """One issue a reviewer spots line by line (``pattern``) or in the whole snippet (``absent``)."""

    name: str
    severity: str
    message: str
    fix: str
    pattern: re.Pattern[str] | None = None
    absent: re.Pattern[str] | None = None


CODE_CHECKS: tuple[CodeCheck, ...] = (
    CodeCheck(
        name="bare-except",
        severity="high",
        message="A bare `except:` swallows every error, including KeyboardInterrupt and SystemExit.",
        fix="Catch the specific exceptions you expect, e.g. `except ValueError:`.",
        pattern=re.compile(r"^\s*except\s*:"),
    ),
    CodeCheck(
        name="mutable-default-argument",
        severity="high",
        message="A mutable default argument is shared between calls.",
        fix="Default to `None` and create the list or dict inside the function.",
        pattern=re.compile(r"def\s+\w+\s*\([^)]*=\s*(\[\]|\{\}|set\(\)|list\(\)|dict\(\))"),
    ),
    CodeCheck(
        name="sql-injection",
        severity="high",
        message="SQL is built by string formatting, which allows SQL injection.",
        fix="Use a parameterised query: `cursor.execute(sql, params)`.",
        pattern=re.compile(
            r"""(?i)(f["'][^"']*\b(select|insert|update|delete)\b"""
            r"""|\b(select|insert|update|delete)\b[^"']*["']\s*(%|\+|\.format\())"""
        ),
    ),
    CodeCheck(
        name="eval-exec",
        severity="high",
        message="`eval`/`exec` runs arbitrary code.",
        fix="Parse the input explicitly (e.g. `ast.literal_eval` or `json.loads`).",
        pattern=re.compile(r"\b(eval|exec)\s*\("),
    ),
    CodeCheck(
        name="hardcoded-secret",
        severity="high",
        message="A credential is hard-coded in the source.",
        fix="Read it from the environment or a secret store.",
        pattern=re.compile(r"""(?i)\b(password|passwd|secret|api_key|token)\s*=\s*["'][^"']+["']"""),
    ),
    CodeCheck(
        name="wildcard-import",
        severity="medium",
        message="A wildcard import hides where names come from.",
        fix="Import the names you use explicitly.",
        pattern=re.compile(r"^\s*from\s+\S+\s+import\s+\*"),
    ),
    CodeCheck(
        name="none-comparison",
        severity="low",
        message="Comparison with None uses `==`/`!=`.",
        fix="Use `is None` / `is not None`.",
        pattern=re.compile(r"[=!]=\s*None\b"),
    ),
    CodeCheck(
        name="todo",
        severity="low",
        message="An unresolved TODO/FIXME is left in the code.",
        fix="Resolve it or track it in an issue.",
        pattern=re.compile(r"#.*\b(TODO|FIXME|XXX|HACK)\b"),
    ),
    CodeCheck(
        name="debug-print",
        severity="low",
        message="A debug `print` call is left in the code.",
        fix="Use the `logging` module.",
        pattern=re.compile(r"^\s*print\("),
    ),
    CodeCheck(
        name="missing-tests",
        severity="medium",
        message="No tests accompany this code.",
        fix="Add unit tests for the main path and the error cases.",
        absent=re.compile(r"def test_|\bassert\b|unittest|pytest"),
    ),
)

STOPWORDS = frozenset(
    "a an and are as at be been but by for from has have he her his how i if in into is it its of on or our "
    "she so such than that the their them then there these they this to was we were what when where which "
    "while who will with would you your can also not more most other some".split()
)


@dataclass(frozen=True)
class GradingRule:
    """A behaviour a rubric can ask for (``asks``), and how a grader recognises it in an answer (``shows``)."""

    label: str
    asks: re.Pattern[str]
    shows: re.Pattern[str]


GRADING_RULES: tuple[GradingRule, ...] = (
    GradingRule(
        "asks for the order number",
        asks=re.compile(r"\basks? for the order number", re.I),
        shows=re.compile(r"\border number\b", re.I),
    ),
    GradingRule(
        "offers a human agent",
        asks=re.compile(r"\boffers?\b[^.;]{0,30}\b(escalat|human)|\bescalation is expected", re.I),
        shows=re.compile(r"\bescalat|\bhuman (support )?agent", re.I),
    ),
    GradingRule(
        "acknowledges the frustration",
        asks=re.compile(r"\backnowledges? the frustration", re.I),
        shows=re.compile(r"\b(sorry|apologi[sz]e|understand how|frustrat)", re.I),
    ),
    GradingRule(
        "asks a clarifying question",
        asks=re.compile(r"\bclarifying question", re.I),
        shows=re.compile(r"\?"),
    ),
    GradingRule(
        "notes the missing tests",
        asks=re.compile(r"\bhas no tests\b", re.I),
        shows=re.compile(r"\btests?\b", re.I),
    ),
    GradingRule(
        "gives a concrete fix",
        asks=re.compile(r"\bconcrete fix\b", re.I),
        shows=re.compile(r"\bfix\b", re.I),
    ),
    GradingRule(
        "gives the line of each issue",
        asks=re.compile(r"\bgives the line\b", re.I),
        shows=re.compile(r"\bline\b\"?:?\s*\d", re.I),
    ),
)
"""What a grader checks beyond the facts: the behaviours the demo's rubrics name."""

REFUSAL_MARKERS = re.compile(r"\b(can't|cannot|can not|unable to|won't) (help|assist) with (that|this)", re.I)
RUBRIC_WORDS = frozenset(
    "answer answers addresses applies asks clarifying concrete does each ends explains expected facts finds "
    "gives good invent invents issue issues must never notes question relevant states verdict where".split()
)
"""A rubric's own vocabulary: words that say how to grade rather than what a good answer contains."""
