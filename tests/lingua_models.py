"""Tiny LLMLingua models built at test time: no download, a few seconds, random weights.

- ``tiny_causal_lm``: a 2-layer ``LlamaForCausalLM`` with a byte-level BPE vocabulary trained
  offline on the paragraphs below, for the ``llmlingua`` (perplexity) method.
- ``tiny_token_classifier``: a 2-layer ``BertForTokenClassification`` (2 labels) with a cased
  WordPiece vocabulary trained the same way, in a folder named for
  ``bert-base-multilingual-cased`` (LLMLingua-2 picks its tokenizer rules by the folder's name),
  for the ``llmlingua2`` method.

The weights are random (seeded), so what they drop is arbitrary: tests with them check the
plumbing (what is kept verbatim, line structure, rates), never the quality of a compression.
Byte-level BPE covers every byte, so any text round-trips; the WordPiece alphabet is printable
ASCII plus a few typographic characters, and anything else becomes ``[UNK]``, which LLMLingua-2
drops like a special token (a trained multilingual vocabulary rarely has unknown characters).
WordPiece training is not deterministic across runs: tests must not depend on the exact vocab.
"""

from __future__ import annotations

import string
from pathlib import Path

CORPUS = (
    "Our store sells kitchen tools, cookware, lamps and small furniture to customers in many countries. "
    "Every order is packed by hand in our warehouse and handed to a carrier on the next working day. "
    "Customers can follow a parcel with the tracking link that we send by e-mail as soon as it leaves.",
    "If something arrives broken, please write to us within 14 days and attach a photo of the damage. "
    "We will send a replacement at no cost, or refund the price to the card that was used to pay. "
    "Returns of unused items are free for 30 days, and the refund takes 5-7 business days to appear.",
    "The assistant answers questions about orders, payments, delivery, returns and accounts. It should be "
    "friendly and brief, it must never guess an order number, and it should always say what happens next. "
    "When a question is outside the policy, the assistant offers to pass the case to a human colleague.",
    "Membership costs $7.99 a month or $79 a year, and members get free express delivery on every order. "
    "A member can cancel at any time under Account > Membership, and the last month is never charged twice. "
    "Gift cards are valid for 24 months, cannot be exchanged for cash, and can be combined with a coupon.",
    "Write the answer in plain English, in short paragraphs, with the most important sentence first. "
    "Use the customer's name once, thank them for their patience when a delay happened, and avoid jargon. "
    'Format: a JSON object with the keys "answer", "next_step" and "escalate" (true or false).',
    "## Shipping\n- Standard: 3-5 business days\n- Express: 1-2 business days ($14.99)\n"
    "<examples>\n<example>Where is my parcel? {order_id}</example>\n</examples>\n"
    "Contact support@example.com or visit https://example.com/help for the opening hours (9:00 to 17:00).",
)
"""A few paragraphs of shop-policy English (with markdown, tags, numbers, URLs) to train vocabularies on."""
BPE_VOCAB_SIZE = 600
WORDPIECE_VOCAB_SIZE = 800
BERT_FOLDER = "tiny-bert-base-multilingual-cased-token-classifier"
"""LLMLingua-2 requires ``bert-base-multilingual-cased`` (or ``xlm-roberta-large``) in the folder name."""
SEED = 1234


def tiny_causal_lm(folder: Path) -> Path:
    """A random 2-layer Llama (hidden 64) with its byte-level BPE tokenizer, saved in ``folder``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    specials = ["<|endoftext|>", "<|pad|>"]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )  # fmt: skip
    backend.train_from_iterator(CORPUS, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|pad|>"
    )
    config = LlamaConfig(
        vocab_size=backend.get_vocab_size(), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _wordpiece_alphabet() -> list[str]:
    return [*string.ascii_letters, *string.digits, *string.punctuation, *"€£–—‘’“”•…é"]


def tiny_token_classifier(folder: Path) -> Path:
    """A random 2-layer BERT token classifier (2 labels) with a cased WordPiece vocab, saved in
    ``folder / BERT_FOLDER`` (the returned path), whose name LLMLingua-2 recognises."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertForTokenClassification, BertTokenizerFast

    target = folder / BERT_FOLDER
    target.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=WORDPIECE_VOCAB_SIZE, special_tokens=specials, initial_alphabet=_wordpiece_alphabet(),
        limit_alphabet=1000, show_progress=False,
    )  # fmt: skip
    backend.train_from_iterator(CORPUS, trainer=trainer)
    vocab = [token for token, _ in sorted(backend.get_vocab().items(), key=lambda item: item[1])]
    # Like a real BERT vocab, every character also as a word-continuing piece ("##K"): without it a
    # word such as "KEEPSPAN" whose inner letters the corpus never had becomes one [UNK].
    known = set(vocab)
    vocab += [piece for char in _wordpiece_alphabet() for piece in (char, f"##{char}") if piece not in known]
    # On transformers 5, BertTokenizerFast(vocab_file=...) ignores the file: write vocab.txt and load the folder.
    (target / "vocab.txt").write_text("".join(f"{token}\n" for token in vocab), encoding="utf-8")
    tokenizer = BertTokenizerFast.from_pretrained(str(target), do_lower_case=False, strip_accents=False)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=512, num_labels=2, pad_token_id=tokenizer.pad_token_id,
        architectures=["BertForTokenClassification"],
    )  # fmt: skip
    torch.manual_seed(SEED)
    model = BertForTokenClassification(config)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target
