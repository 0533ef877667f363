#!/usr/bin/env python3
"""Writes tests/fixtures/hub/tokenizers.json: what transformers' AutoTokenizer gives for each
hub-layout fixture on texts chosen to stress tokenizers (whitespace, Unicode normalisation,
unknown characters, special tokens written in the text, language codes), and how it decodes
ids (those ids, and random ones); and tests/fixtures/hub/added_tokens.json, the same for copies
of some fixtures given added tokens in tokenizer_config.json or added_tokens.json. A development tool, not run by the tests: it needs
`pip install transformers==5.24.0 sentencepiece protobuf` and is run from the checkout."""
import json, os, random, sys

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
from transformers import AutoTokenizer  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "hub")
TEXTS = [
    "Grant of Copyright License.",
    "  leading and trailing spaces  ",
    "multiple    spaces\tand\ttabs\nnew lines\r\nwindows",
    "Ünïcödé àccents: café, naïve, São Paulo, Ærø, Œuvre, ß",
    "Full-width：ＡＢＣ１２３　space ｶﾀｶﾅ",
    "Numbers 1,234.56 and 2026-12-01 12:30, 3rd, 1st.",
    "Emoji 😀🎉👍🏽 and symbols ©®™ € £ ¥ § ¶ • … — – “quotes” ‘single’ «guillemets»",
    "中文字符和日本語のテキスト 한국어",
    "Ελληνικά, Русский текст, עברית, العربية",
    "<unk> </s> <pad> <s> <mask> <extra_id_0> literal special tokens",
    "a </s> b<pad>c <s>d",
    "a",
    "",
    " ",
    "x" * 60,
    "URL https://example.com/path?q=1&r=two#frag and email a.b@c.de",
    "Zero\u200bwidth\u00a0nbsp\u2028line sep",
    "ALL CAPS SENTENCE WITH PUNCTUATION!!! ???",
    "mixed-CASE hyphen-ated words' apostrophes don't can't",
    "combining a\u0301 e\u0308 and precomposed á ë",
    "ﬁ ligature ﬂ and ½ ¼ ² ³ ℃ № Ⅻ",
    "\u3000ideographic space\u3000",
    "trailing newline\n",
    "(parentheses) [brackets] {braces} <angle> |pipe| \\backslash/ ~tilde^ `tick`",
    ">>pt<< A Marian target code, >>es<< and one inside",
]


# Tokens added through tokenizer_config.json's added_tokens_decoder (or, in older folders,
# added_tokens.json) to folders without tokenizer.json: fixture, file, entries (content and
# flags, each at the next id).
ADDED = [
    ("t5-spm", "added_tokens_decoder", [
        {"content": "<sep>", "special": True, "normalized": False},
        {"content": "hello world", "special": False, "normalized": True},
    ]),
    ("bart-legacy", "added_tokens_decoder", [
        {"content": "<sep>", "special": True, "normalized": False, "lstrip": True},
        {"content": "hello world", "special": False, "normalized": True, "rstrip": True},
    ]),
    # The family's own specials declared again with other flags, as transformers 4 saved them
    # (`existing`: at the id the vocabulary gives them).
    ("bart-legacy", "added_tokens_decoder", [
        {"content": "<s>", "special": True, "existing": True},
        {"content": "</s>", "special": True, "existing": True},
        {"content": "<mask>", "special": True, "normalized": True, "lstrip": True, "existing": True},
    ]),
    ("t5-spm", "added_tokens_decoder", [
        {"content": "</s>", "special": True, "normalized": False, "existing": True},
        {"content": "<extra_id_0>", "special": True, "normalized": True, "lstrip": True, "rstrip": True,
         "existing": True},
    ]),
    ("pegasus", "added_tokens_decoder", [
        {"content": "[SEP]", "special": True, "normalized": False, "rstrip": True},
        {"content": "world", "special": False, "normalized": False, "single_word": True},
    ]),
    ("t5-spm", "added_tokens.json", [{"content": "<sep>"}, {"content": "hello world"}]),
]
ADDED_TEXTS = ["a <sep> b", "say hello world now", "x<sep>y", "Hello world", "<sep>", "[SEP] a [SEP]b",
               "hello worldly world", "a world,world", "a <mask> b<mask>c", "a <extra_id_0> b<extra_id_0>c",
               "x </s> y", "a \uff1cextra_id_0\uff1e b"]


def added_tokens():
    """What AutoTokenizer gives for copies of fixtures given the tokens of ADDED."""
    import shutil, tempfile
    out = []
    for name, kind, entries in ADDED:
        with tempfile.TemporaryDirectory() as tmp:
            folder = os.path.join(tmp, name)
            shutil.copytree(os.path.join(ROOT, name), folder)
            config_path = os.path.join(folder, "tokenizer_config.json")
            config = json.load(open(config_path, encoding="utf-8")) if os.path.exists(config_path) else {}
            before = AutoTokenizer.from_pretrained(folder)
            base = len(before)
            if kind == "added_tokens_decoder":
                decoder, new = {}, 0
                for e in entries:
                    e = dict(e)
                    if e.pop("existing", False):
                        at = before.convert_tokens_to_ids(e["content"])
                    else:
                        at, new = base + new, new + 1
                    decoder[str(at)] = e
                config["added_tokens_decoder"] = decoder
                json.dump(config, open(config_path, "w", encoding="utf-8"), indent=1)
                added_json = None
            else:
                added_json = {e["content"]: base + i for i, e in enumerate(entries)}
                json.dump(added_json, open(os.path.join(folder, "added_tokens.json"), "w", encoding="utf-8"))
            tok = AutoTokenizer.from_pretrained(folder)
            encodings = []
            for text in ADDED_TEXTS:
                ids = tok(text)["input_ids"]
                encodings.append({"text": text, "lang": None, "ids": ids,
                                  "decoded": tok.decode(ids, skip_special_tokens=True)})
            out.append({"fixture": name, "tokenizer_config": config, "added_tokens_json": added_json,
                        "vocab": len(tok), "encodings": encodings, "decodings": []})
            print(name, kind, len(tok), file=sys.stderr)
    return out


def main():
    out = {}
    rng = random.Random(5)
    for name in sorted(os.listdir(ROOT)):
        folder = os.path.join(ROOT, name)
        if not os.path.isfile(os.path.join(folder, "expected.json")):
            continue
        expected = json.load(open(os.path.join(folder, "expected.json"), encoding="utf-8"))
        tok = AutoTokenizer.from_pretrained(folder)
        langs = [None]
        if expected.get("languages") and expected["languages"].get("codes"):
            codes = list(expected["languages"]["codes"].values())
            langs = [{"src_lang": codes[0], "tgt_lang": codes[1]}, {"src_lang": codes[2], "tgt_lang": codes[0]}]
        encodings = []
        for lang in langs:
            if lang:
                tok.src_lang = lang["src_lang"]
                tok.tgt_lang = lang["tgt_lang"]
            for text in TEXTS:
                ids = tok(text)["input_ids"]
                encodings.append({"text": text, "lang": lang, "ids": ids,
                                  "decoded": tok.decode(ids, skip_special_tokens=True)})
        vocab = len(tok)
        decodings = []
        for _ in range(30):
            ids = [rng.randrange(vocab) for _ in range(rng.randrange(1, 24))]
            decodings.append({"ids": ids, "text": tok.decode(ids, skip_special_tokens=True)})
        for case in expected["cases"]:
            for key in ("greedy_ids", "default_ids"):
                decodings.append({"ids": case[key], "text": tok.decode(case[key], skip_special_tokens=True)})
        out[name] = {"tokenizer_class": type(tok).__name__, "vocab": vocab,
                     "encodings": encodings, "decodings": decodings}
        print(name, type(tok).__name__, len(encodings), "encodings", file=sys.stderr)
    json.dump(out, open(os.path.join(ROOT, "tokenizers.json"), "w", encoding="utf-8"), ensure_ascii=False, indent=0)
    json.dump(added_tokens(), open(os.path.join(ROOT, "added_tokens.json"), "w", encoding="utf-8"),
              ensure_ascii=False, indent=0)


main()
