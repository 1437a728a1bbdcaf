"""Task analysis: what a conversation asks for, as the router needs to know it.

The complexity score is a hand-built heuristic, designed from first principles and not
fitted to any data set:

- the task type sets a floor of demand (chatting needs little, code and math need much);
- the most demanding intent verb sets another, after the levels of Bloom's taxonomy
  (explain < apply < analyse < evaluate < create);
- each distinct specialist term (quantum, jurisprudence, eigenvalue...) adds demand, as do
  words asking for rigour (prove, optimal, edge case), several questions or listed parts,
  and length; words asking for brevity (briefly, in one word) take some away;
- the last user message is read first; earlier turns and the system prompt can only
  raise its score, by as much as half the gap for a short follow-up.

Words are read in one pass over the first kilobyte and the last few hundred characters of
the last message and a bounded slice of earlier turns and of the system prompt, so a 1 MB
prompt costs about what a 2 KB one does; token counts and the image check still see every
character.
"""

from __future__ import annotations

import bisect
import enum
import itertools
import json
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import NamedTuple

from orchestrator.core.decision import Analysis
from orchestrator.core.types import TOOL, ChatRequest, Message


class Complexity(enum.StrEnum):
    SIMPLE = "simple"
    MODERATE = "moderate"
    COMPLEX = "complex"
    EXPERT = "expert"


class TaskType(enum.StrEnum):
    CODE = "code"
    MATH = "math"
    REASONING = "reasoning"
    CREATIVE_WRITING = "creative_writing"
    TRANSLATION = "translation"
    SUMMARIZATION = "summarization"
    EXTRACTION = "extraction"
    QUESTION_ANSWERING = "question_answering"
    CONVERSATION = "conversation"


NEED_CODE = "code"
NEED_REASONING = "reasoning"
NEED_LONG_CONTEXT = "long_context"
NEED_VISION = "vision"
NEED_TOOLS = "tools"
NEED_STRUCTURED_OUTPUT = "structured_output"
NEED_LOGPROBS = "logprobs"


@dataclass(frozen=True, slots=True)
class TaskAnalysis:
    complexity: Complexity
    complexity_score: float  # in [0, 1]; complexity is a banding of it
    task_type: TaskType
    input_tokens: int
    expected_output_tokens: int
    max_input_tokens: int  # the most tokens a provider can count for the prompt: budgets reserve on it
    needs: frozenset[str] = frozenset()

    def summary(self) -> Analysis:
        """What a routing decision says of the analysis."""
        return Analysis(self.complexity.value, round(self.complexity_score, 4), self.task_type.value, self.input_tokens,
                        self.expected_output_tokens, tuple(sorted(self.needs)))

    def as_dict(self) -> dict:
        return self.summary().to_json()


def estimate_tokens(text: str) -> int:
    """About four characters a token: cheap, and close enough for English prose and code."""
    return (len(text) + 3) // 4


# Tokens a provider adds around each message (role and turn markers) and once around the
# prompt; OpenAI documents 3 a message and 3 to prime the reply, the others use as few.
_FRAMING_TOKENS = 16


# The most tokens an image can be billed as: gpt-4o-mini counts an image as about 33 times
# gpt-4o's tokens (2,833 + 5,667 a 512-pixel tile), up to about 48,000 for eight tiles.
_IMAGE_MAX_TOKENS = 50_000


def declarations(request: ChatRequest) -> str:
    """The tools' definitions and the answer's schema: the providers count them as input."""
    parts = [json.dumps(tool.to_json()) for tool in request.tools]
    if request.response_format is not None and request.response_format.schema is not None:
        parts.append(json.dumps(request.response_format.schema))
    return "\n".join(parts)


def request_needs(request: ChatRequest) -> frozenset[str]:
    """The capabilities the request's form asks of a model, whatever its text says."""
    needs = set()
    if request.offers_tools or any(m.tool_calls or m.role == TOOL for m in request.messages):
        needs.add(NEED_TOOLS)
    if request.response_format is not None:
        needs.add(NEED_STRUCTURED_OUTPUT)
    if request.logprobs is not None:
        needs.add(NEED_LOGPROBS)
    if any(m.images for m in request.messages):
        needs.add(NEED_VISION)
    return frozenset(needs)


def analyze_request(request: ChatRequest) -> TaskAnalysis:
    return analyze(request.messages, request.system_prompt, request.max_tokens, declarations(request),
                   request_needs(request))


def request_max_input_tokens(request: ChatRequest) -> int:
    """max_input_tokens of the whole request: its messages, declarations and images."""
    declared = declarations(request)
    texts = [_content(m)[0] for m in request.messages] + ([declared] if declared else [])
    images = sum(len(m.images) for m in request.messages)
    return max_input_tokens(texts, request.system_prompt or "") + images * _IMAGE_MAX_TOKENS


def max_input_tokens(texts: list[str], system_prompt: str) -> int:
    """The most input tokens any provider can count for these texts: one a UTF-8 byte, and a
    few for the framing of each message.

    No tokenizer the providers use makes a token of less than a byte: OpenAI's and Anthropic's
    are byte-level BPE, Gemini's a SentencePiece with byte fallback; digits (one token each on
    Gemini) and rare characters (a token a byte) come close. A tokenizer that applies NFKC first
    counts the normalized text, which some characters lengthen (U+FDFA becomes 33 bytes), so the
    longer of the two is counted. Settlement bills what the provider reports, so the reservation
    rests on this bound rather than on `estimate_tokens`, which is about a quarter of it for
    English.
    """
    framing = _FRAMING_TOKENS * (len(texts) + 1)
    return sum(_max_text_tokens(text) for text in texts) + _max_text_tokens(system_prompt) + framing


def _max_text_tokens(text: str) -> int:
    if text.isascii():
        return len(text)
    normalized = text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)
    return max(len(text.encode("utf-8", "surrogatepass")), len(normalized.encode("utf-8", "surrogatepass")))


# --- The vocabulary ---------------------------------------------------------------------

_TYPES = tuple(TaskType)

# How much capability a task of each type needs before anything else is known.
_TYPE_DEMAND = {
    TaskType.CONVERSATION: 0.05,
    TaskType.QUESTION_ANSWERING: 0.15,
    TaskType.TRANSLATION: 0.20,
    TaskType.EXTRACTION: 0.22,
    TaskType.SUMMARIZATION: 0.28,
    TaskType.CREATIVE_WRITING: 0.32,
    TaskType.REASONING: 0.45,
    TaskType.MATH: 0.50,
    TaskType.CODE: 0.50,
}

# Evidence for each task type, as weight -> words; a type needs a total of 1 to be explicit.
# In every word list, a_b stands for the phrase "a b".
_TYPE_WORDS: dict[TaskType, dict[float, str]] = {
    TaskType.CODE: {
        1.5: "code program programming debug compile compiler python javascript typescript java golang "
        "kotlin php html css sql regex refactor algorithm bash numpy traceback stacktrace segfault "
        "cpp csharp snippet",
        1.0: "function script implement implementation bug rust ruby api recursion recursive array "
        "database git docker kubernetes json yaml backend frontend endpoint react django flask "
        "pandas syntax repository runtime",
        0.5: "class method variable loop query linux shell library framework exception swift def return "
        "import const void printf println elif nullptr lambda struct async await int bool std",
    },
    TaskType.MATH: {
        1.5: "math mathematics mathematical equation integral derivative theorem algebra geometry "
        "calculus polynomial logarithm factorial perimeter sqrt modulo arithmetic divisible",
        1.0: "solve calculate proof prove probability statistics statistical matrix fraction median "
        "variance exponent prime integer triangle radius angle",
        0.5: "compute vector sum percentage percent average circle area",
    },
    TaskType.REASONING: {
        1.5: "puzzle riddle",
        1.0: "reason reasoning logic logical deduce infer analyze analyse analysis evaluate assess "
        "implication argue argument critique tradeoff trade_off dilemma hypothesis pros_and_cons",
        0.5: "compare contrast impact consequence cause strategy decide whether",
    },
    TaskType.CREATIVE_WRITING: {
        2.0: "poem haiku limerick sonnet lyrics screenplay rhyme",
        1.5: "story poetry song fiction fictional slogan tagline joke tale",
        1.0: "character plot narrative creative imagine essay blog tweet dialogue verse compose",
        0.5: "write",
    },
    TaskType.TRANSLATION: {
        3.0: "translate translation",
        0.5: "english french spanish german italian portuguese chinese mandarin japanese korean "
        "russian arabic hindi dutch swedish polish turkish greek latin hebrew vietnamese thai",
    },
    TaskType.SUMMARIZATION: {
        3.0: "summarize summarise summary tldr",
        2.0: "condense recap gist",
        1.5: "shorten",
    },
    TaskType.EXTRACTION: {
        3.0: "extract extraction",
        1.5: "entity entities classify categorize sentiment csv",
        1.0: "parse label",
        0.5: "identify fields table",
    },
    TaskType.QUESTION_ANSWERING: {
        1.0: "explain describe define definition",
        0.5: "what who when where which why meaning difference",
        0.3: "how tell",
    },
    TaskType.CONVERSATION: {
        1.0: "hi hello hey thanks thank bye goodbye ok okay lol chat",
    },
}

# Intent verbs by the cognitive level they ask for (Bloom's revised taxonomy).
_LEVEL_WORDS = {
    0.30: "explain describe discuss interpret clarify illustrate outline paraphrase elaborate overview "
    "summarize summarise why",
    0.45: "solve calculate implement apply demonstrate debug fix refactor build develop simulate "
    "estimate compare contrast differentiate",
    0.60: "analyze analyse analysis analytical examine investigate diagnose infer deduce dissect scrutinize",
    0.62: "evaluate assess critique criticize judge justify argue defend prove verify appraise",
    0.65: "design architect formulate devise derive propose research synthesize invent hypothesize theorize",
}

# Specialist vocabulary: a word a layperson rarely needs marks a field that needs expertise.
_DOMAIN_WORDS = (
    # computing
    "quantum cryptography cryptographic encryption cipher blockchain concurrency concurrent parallelism "
    "kernel asymptotic heuristic neural gradient backpropagation bayesian stochastic markov entropy "
    "byzantine microservices virtualization cybersecurity vulnerability exploit malware "
    # mathematics
    "topology topological manifold eigenvalue eigenvector homomorphism isomorphism lemma conjecture "
    "axiom differential combinatorics combinatorial tensor hilbert lagrangian hamiltonian fourier "
    "laplace convergence "
    # physics and chemistry
    "relativity thermodynamics thermodynamic electromagnetic electromagnetism entanglement superposition "
    "cosmology astrophysics photon quark boson fermion neutrino plasma superconductivity semiconductor "
    "spectroscopy molecular stoichiometry enthalpy catalyst catalysis isomer polymer electrochemistry "
    "redox oxidation titration orbital "
    # life sciences and medicine
    "genome genomic protein enzyme metabolic metabolism pathophysiology pharmacology pharmacokinetics "
    "immunology neuroscience neuron epidemiology oncology carcinoma diagnosis clinical pathogen "
    "mitochondria chromosome mutation phylogenetic cardiovascular endocrine receptor antibody antigen "
    "microbiome virology "
    # law
    "jurisprudence statute statutory litigation tort liability constitutional precedent plaintiff "
    "defendant jurisdiction contractual fiduciary negligence legislation "
    # economics and finance
    "macroeconomic macroeconomics microeconomics econometric monetary fiscal elasticity equilibrium "
    "arbitrage portfolio valuation amortization actuarial liquidity securities depreciation "
    # philosophy and social science
    "epistemology epistemic ontology ontological metaphysics metaphysical phenomenology utilitarianism "
    "utilitarian deontology deontological existentialism normative teleological dialectic hermeneutics "
    "geopolitical geopolitics socioeconomic historiography anthropology "
    "machine_learning deep_learning reinforcement_learning neural_network game_theory finite_element "
    "language_model natural_language_processing computer_vision string_theory general_relativity "
    "dark_matter black_hole monte_carlo time_series"
)

_RIGOR_WORDS = (
    "rigorous rigorously formal formally proof prove comprehensive comprehensively thorough thoroughly "
    "detailed depth nuanced optimal optimally optimize optimization efficient efficiently scalable "
    "scalability robust robustness production complexity constraint constraints tradeoff tradeoffs "
    "trade_off trade_offs "
    "justify cite citations references assumptions precise precisely exhaustive critically "
    "implications advanced sophisticated step_by_step edge_case edge_cases from_scratch time_complexity "
    "big_o pros_and_cons"
)

_BREVITY_WORDS = (
    "briefly brief quick quickly short simple simply concise concisely tldr eli5 basic basics "
    "one_word yes_or_no one_sentence in_a_sentence"
)


def _forms(word: str) -> set[str]:
    """The word and its regular inflections; forms that never occur cost nothing.

    Words of three letters or fewer (hi, ok, sql) are taken as they are: "his" is not "hi".
    """
    if len(word) <= 3:
        return {word}
    forms = {word, word + "s", word + "es", word + "ed", word + "ing"}
    if word.endswith("e"):
        forms |= {word + "d", word[:-1] + "ing"}
    if word.endswith("y"):
        forms |= {word[:-1] + "ies", word[:-1] + "ied"}
    if word.endswith("ze"):
        forms |= _forms(word[:-2] + "se")
    return forms


def _keys(words: str) -> set[bytes]:
    """The lookup keys of a word list: inflected words, and phrases (written a_b) as they are."""
    keys: set[bytes] = set()
    for word in words.split():
        forms = {word.replace("_", " ")} if "_" in word else _forms(word)
        keys |= {form.encode() for form in forms}
    return keys


def _type_weights() -> dict[bytes, tuple[tuple[int, float], ...]]:
    weights: dict[bytes, tuple[tuple[int, float], ...]] = {}
    for index, task_type in enumerate(_TYPES):
        for weight, words in _TYPE_WORDS.get(task_type, {}).items():
            for key in _keys(words):
                weights[key] = weights.get(key, ()) + ((index, weight),)
    return weights


def _levels() -> dict[bytes, float]:
    levels: dict[bytes, float] = {}
    for level, words in _LEVEL_WORDS.items():
        levels.update((key, max(level, levels.get(key, 0.0))) for key in _keys(words))
    return levels


_TYPE_WEIGHTS = _type_weights()
_LEVELS = _levels()
_DOMAIN = frozenset(_keys(_DOMAIN_WORDS))
_RIGOR = frozenset(_keys(_RIGOR_WORDS))
_BREVITY = frozenset(_keys(_BREVITY_WORDS))
_LOOKUP_KEYS = frozenset(_TYPE_WEIGHTS) | frozenset(_LEVELS) | _DOMAIN | _RIGOR | _BREVITY


def _phrases_by_anchor() -> dict[bytes, tuple[bytes, ...]]:
    """A phrase is looked for only when its longest word, its anchor, is in the text."""
    phrases: dict[bytes, tuple[bytes, ...]] = {}
    for phrase in sorted(key for key in _LOOKUP_KEYS if b" " in key):
        anchor = max(phrase.split(), key=len)
        phrases[anchor] = phrases.get(anchor, ()) + (phrase,)
    return phrases


_PHRASES = _phrases_by_anchor()
_ANCHORS = frozenset(_PHRASES)
_WORDS = _LOOKUP_KEYS | _ANCHORS
_NO_WEIGHTS = itertools.repeat(())
_NO_LEVEL = itertools.repeat(0.0)

# Lower-cases ASCII and turns ASCII punctuation into spaces; UTF-8 bytes of other scripts stay.
_FOLD = bytes(32 if b < 128 and not chr(b).isalnum() else (b + 32 if 65 <= b <= 90 else b) for b in range(256))
# The punctuation and digits the structural signals count, kept apart in one pass.
_SIGNAL_BYTES = b"?{};`!+-*/=^<>0123456789"
_NOT_SIGNAL = bytes(b for b in range(256) if b not in _SIGNAL_BYTES)
_NOT_DIGIT = bytes(b for b in range(256) if not 48 <= b <= 57)
_NOT_OPERATOR = bytes(b for b in range(256) if b not in b"+-*/=^<>")
_LIST_ITEM = re.compile(rb"\n[ \t]*(?:[-*]|\xe2\x80\xa2|\d{1,2}[.)])[ \t]")
_MARKDOWN_IMAGE = re.compile(r"!\[[^\]\n]{0,500}\]\([^)\s]+[^)]*\)")

# How much of each part of the conversation is read (characters). Instructions sit at the
# start or the end of a prompt; the middle of a long one is mostly pasted material.
_LAST_HEAD, _LAST_TAIL = 1024, 256
_CONTEXT_CHARS_PER_MESSAGE, _CONTEXT_CHARS = 512, 1536
_SYSTEM_CHARS = 768

_EXPLICIT = 1.0  # type evidence at which a task type counts as stated, not guessed
_LONG_CONTEXT_TOKENS = 32_000  # beyond what short-window models take, and where recall degrades
_IMAGE_TOKENS = 765  # a high-detail 1024x1024 image on OpenAI's tiling


# --- Reading one part of the conversation -----------------------------------------------

# Task types by index: the hot path avoids Enum member lookups, which are slow on 3.11.
_CODE, _MATH, _TRANSLATION, _SUMMARIZATION, _QUESTION, _CONVERSATION = map(
    _TYPES.index,
    (
        TaskType.CODE,
        TaskType.MATH,
        TaskType.TRANSLATION,
        TaskType.SUMMARIZATION,
        TaskType.QUESTION_ANSWERING,
        TaskType.CONVERSATION,
    ),
)
_REASONING_TYPES = (_MATH, _TYPES.index(TaskType.REASONING))
_DEMAND = tuple(_TYPE_DEMAND[t] for t in _TYPES)


class _Reading(NamedTuple):
    score: float
    task_type: int  # index into _TYPES
    evidence: float  # the weight of evidence for that type
    code: bool  # code in the text itself: a fence or code punctuation


def _window(text: str, head: int, tail: int) -> str:
    if len(text) <= head + tail:
        return text
    return text[:head] + "\n" + text[-tail:]


def _words(folded: bytes) -> tuple[list[float], float, int, int, int]:
    """Type evidence, cognitive level, and specialist, rigour and brevity word counts."""
    hits = _WORDS.intersection(folded.split())
    anchors = _ANCHORS.intersection(hits)
    if anchors:
        hits = hits.union([phrase for anchor in anchors for phrase in _PHRASES[anchor] if phrase in folded])
    evidence = [0.0] * len(_TYPES)
    for index, weight in itertools.chain.from_iterable(map(_TYPE_WEIGHTS.get, hits, _NO_WEIGHTS)):
        evidence[index] += weight
    level = max(map(_LEVELS.get, hits, _NO_LEVEL), default=0.0)
    domain = len(_DOMAIN.intersection(hits))
    rigor = len(_RIGOR.intersection(hits))
    return evidence, level, domain, rigor, len(_BREVITY.intersection(hits))


def _read(text: str, head: int, tail: int = 0) -> _Reading:
    raw = _window(text, head, tail).encode("utf-8", "ignore")
    evidence, level, domain, rigor, brevity = _words(raw.translate(_FOLD))

    signals = raw.translate(None, _NOT_SIGNAL)
    questions = signals.count(b"?")
    fenced = signals.count(b"`") >= 3 and b"```" in raw
    code_marks = signals.count(b"{") + signals.count(b";")
    evidence[_CODE] += 3.0 * fenced + min(2.0, code_marks / 6)
    operators = len(signals.translate(None, _NOT_OPERATOR))
    if operators and len(signals.translate(None, _NOT_DIGIT)) >= 2:
        evidence[_MATH] += min(2.0, operators * 0.5)
    if questions:
        evidence[_QUESTION] += 0.5

    best = max(evidence)
    task_type = evidence.index(best) if best > 0 else _CONVERSATION  # a tie goes to the earlier type
    parts = max(0, questions - 1) + len(_LIST_ITEM.findall(raw))
    score = _score(_DEMAND[task_type], level, domain, rigor, brevity, parts, len(text))
    return _Reading(score, task_type, best, fenced or code_marks >= 6)


def _score(demand: float, level: float, domain: int, rigor: int, brevity: int, parts: int, chars: int) -> float:
    score = (
        max(demand, level)
        + min(0.27, 0.09 * domain)
        + min(0.12, 0.04 * rigor)
        + min(0.10, 0.025 * parts)
        + min(0.12, 0.04 * math.log2(1 + chars / 200))
        - min(0.10, 0.05 * brevity)
    )
    return min(1.0, max(0.0, score))


# --- The conversation --------------------------------------------------------------------


def _content(message: Message) -> tuple[str, int]:
    """A message's text and how many non-text parts (images, audio, files) it carries.

    A list of OpenAI-style parts as content is read as well. Tool calls count as text.
    """
    content = message.content
    if isinstance(content, str):
        calls = getattr(message, "tool_calls", ())
        if calls:
            content = "\n".join([content, *(f"{call.name}({call.arguments})" for call in calls)])
        return content, len(getattr(message, "images", ()))
    if content is None:
        return "", 0
    if not isinstance(content, (list, tuple)):
        return str(content), 0
    texts = [_part_text(part) for part in content]
    found = [text for text in texts if text is not None]
    return "\n".join(found), len(texts) - len(found)


def message_text(message: Message) -> str:
    """A message's text, whatever form its content takes (images and other parts left out)."""
    return _content(message)[0]


def _part_text(part: object) -> str | None:
    """The text of a content part, or None for an image, audio or file part."""
    if isinstance(part, str):
        return part
    if isinstance(part, dict):
        kind, text = part.get("type"), part.get("text")
    else:
        kind, text = getattr(part, "type", None), getattr(part, "text", None)
    return text if kind in (None, "text", "input_text") and isinstance(text, str) else None


def _has_image(text: str) -> bool:
    return "data:image/" in text or _MARKDOWN_IMAGE.search(text) is not None


_COMPLEXITIES = tuple(Complexity)
_BAND_TOPS = (0.25, 0.50, 0.75)  # where simple, moderate and complex end; expert is above


def _band(score: float) -> int:
    """The index of the score's complexity level in _COMPLEXITIES."""
    return bisect.bisect_right(_BAND_TOPS, score)


# Typical answer length by task type, and how it grows with the complexity level.
# Translations and summaries follow the length of what they are given instead.
_OUTPUT_TOKENS = {
    TaskType.CONVERSATION: 60,
    TaskType.QUESTION_ANSWERING: 250,
    TaskType.EXTRACTION: 200,
    TaskType.CREATIVE_WRITING: 700,
    TaskType.REASONING: 600,
    TaskType.MATH: 500,
    TaskType.CODE: 800,
}
_OUTPUT_BY_TYPE = tuple(_OUTPUT_TOKENS.get(t, 0) for t in _TYPES)
_OUTPUT_FACTOR = (0.5, 1.0, 1.6, 2.5)  # by complexity level


def _expected_output(task_type: int, band: int, last_tokens: int, max_tokens: int) -> int:
    if task_type == _TRANSLATION:
        expected = last_tokens * 1.2 + 20
    elif task_type == _SUMMARIZATION:
        expected = min(600, max(60, last_tokens / 5))
    else:
        expected = _OUTPUT_BY_TYPE[task_type] * _OUTPUT_FACTOR[band]
    return max(0, min(max_tokens, int(expected)))


def _last_user_index(messages: tuple[Message, ...]) -> int:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return index
    return len(messages) - 1


def _context(texts: list[str], last: int) -> str:
    """Earlier turns, most recent first, a bounded slice of each."""
    pieces, total = [], 0
    for index in range(len(texts) - 1, -1, -1):
        if index == last or not texts[index]:
            continue
        piece = texts[index][:_CONTEXT_CHARS_PER_MESSAGE]
        pieces.append(piece)
        total += len(piece)
        if total >= _CONTEXT_CHARS:
            break
    return "\n".join(pieces)


def _read_conversation(texts: list[str], last: int, system_prompt: str) -> tuple[float, int, bool]:
    """Score, task type index and code evidence of the last user message in its context.

    Earlier turns and the system prompt can raise the score, never lower it; a short
    follow-up ("and now in Rust?") leans on them more than a self-contained request does,
    and takes their task type when it states none of its own.
    """
    last_text = texts[last] if texts else ""
    score, task_type, evidence, code = _read(last_text, _LAST_HEAD, _LAST_TAIL)
    follow_up_weight = 0.5 if len(last_text) < 200 else 0.25
    backgrounds = ((_context(texts, last), _CONTEXT_CHARS, follow_up_weight), (system_prompt, _SYSTEM_CHARS, 0.2))
    for text, chars, weight in backgrounds:
        if not text:
            continue
        background = _read(text, chars)
        score += weight * max(0.0, background.score - score)
        if evidence < _EXPLICIT <= background.evidence:
            task_type, evidence = background.task_type, background.evidence
        code = code or background.code
    return score, task_type, code


def _needs(score: float, task_type: int, code: bool, input_tokens: int, images: bool) -> frozenset[str]:
    needs = []
    if code or task_type == _CODE:
        needs.append(NEED_CODE)
    if score >= 0.75 or (score >= 0.5 and task_type in _REASONING_TYPES):
        needs.append(NEED_REASONING)
    if input_tokens >= _LONG_CONTEXT_TOKENS:
        needs.append(NEED_LONG_CONTEXT)
    if images:
        needs.append(NEED_VISION)
    return frozenset(needs)


def analyze(messages: tuple[Message, ...], system_prompt: str | None, max_tokens: int, declared: str = "",
            required: frozenset[str] = frozenset()) -> TaskAnalysis:
    """`declared` (tools, schemas) counts as input; `required` joins the needs the text shows."""
    contents = [_content(message) for message in messages]
    texts = [text for text, _ in contents]
    non_text_parts = sum(others for _, others in contents)
    system_prompt = system_prompt if isinstance(system_prompt, str) else ""
    # Each message also costs a few tokens of role markup.
    input_tokens = (
        sum(estimate_tokens(text) + 4 for text in texts)
        + estimate_tokens(system_prompt)
        + non_text_parts * _IMAGE_TOKENS
        + estimate_tokens(declared)
    )

    last = _last_user_index(messages)
    score, type_index, code = _read_conversation(texts, last, system_prompt)
    # Each earlier exchange is more context the answer has to stay consistent with.
    prior_user_turns = sum(1 for message in messages[:last] if message.role == "user")
    score = min(1.0, score + min(0.06, 0.02 * prior_user_turns))
    band = _band(score)
    images = non_text_parts > 0 or any(_has_image(text) for text in texts)
    last_tokens = estimate_tokens(texts[last]) if texts else 0
    return TaskAnalysis(
        complexity=_COMPLEXITIES[band],
        complexity_score=score,
        task_type=_TYPES[type_index],
        input_tokens=input_tokens,
        expected_output_tokens=_expected_output(type_index, band, last_tokens, max_tokens),
        max_input_tokens=max_input_tokens([*texts, declared] if declared else texts, system_prompt) + non_text_parts * _IMAGE_MAX_TOKENS,
        needs=_needs(score, type_index, code, input_tokens, images) | required,
    )
