"""Small GSM8K- and MATH-style problems written for the rise tests."""

from __future__ import annotations

from schemas.ids import example_id
from schemas.records import example_row

# (question, solution): GSM8K style, calculator annotations and a final `#### N` line.
GSM8K = [
    ("A baker made 36 muffins and sold a third of them in the morning. In the afternoon he sold "
     "5 more. How many muffins did he sell in total?",
     "In the morning he sold 36/3 = <<36/3=12>>12 muffins.\n"
     "In total he sold 12 + 5 = <<12+5=17>>17 muffins.\n#### 17"),
    ("Tom has 120 stickers. He gives 25 to Ana, 15 to Ben and 10 to Cal. How many are left?",
     "Tom gives away stickers to three friends.\n"
     "He has 120 - 25 - 15 - 10 = <<120-25-15-10=70>>70 stickers left.\n#### 70"),
    ("A jacket costs $84 and a cap costs $16. Lia buys 3 jackets "
     "and 2 caps. How much does she pay?",
     "The jackets cost 3 x 84 = $<<3*84=252>>252.\n"
     "The caps cost 2 x 16 = $<<2*16=32>>32.\n"
     "She pays 252 + 32 = $<<252+32=284>>284.\n#### 284"),
    ("A tank holds 90 liters. It is filled to 2/3 and then 12.5 liters leak out. How many liters "
     "remain?",
     "It holds 90*2/3 = <<90*2/3=60>>60 liters.\n"
     "Then 60 - 12.5 = <<60-12.5=47.5>>47.5 liters remain.\n#### 47.5"),
]

# (question, solution, gold): MATH style, LaTeX with \boxed{} (nested braces).
MATH = [
    ("What is $\\frac{3}{4}$ of $48$?",
     "We multiply: $48 \\times 3 = 144$. Then we divide by four, so $144 \\div 4 = 36$. "
     "The answer is $\\boxed{36}$.", "36"),
    ("Simplify $\\frac{18}{24}$.",
     "Both numbers are divisible by six. We have $18 \\div 6 = 3$ and $24 \\div 6 = 4$. "
     "So the fraction is $\\boxed{\\dfrac{3}{4}}$.", "\\frac{3}{4}"),
    ("Evaluate $(7 - 2) \\cdot 9 + 4$.",
     "First $7 - 2 = 5$. Then $5 \\cdot 9 + 4 = 49$. Thus the value is $\\boxed{49}$.", "49"),
]

# "Step k:" solutions.
STEPS = [
    ("Sam reads 15 pages a day for 6 days and then 20 pages on the last day. How many pages?",
     "Step 1: In six days Sam reads 15 * 6 = 90 pages.\n"
     "Step 2: Adding the last day gives 90 + 20 = 110 pages.\n"
     "Step 3: The answer is \\boxed{110}.", "110"),
]


def gsm8k_row(question: str, solution: str, answer: str | None = None, row: int = 0) -> dict:
    msgs = [{"role": "user", "content": question}, {"role": "assistant", "content": solution}]
    return example_row(example_id(msgs), msgs, {"dataset": "fixture", "file": "f", "row": row},
                       answer=answer)


def all_rows() -> list[dict]:
    rows = [gsm8k_row(q, s, row=i) for i, (q, s) in enumerate(GSM8K)]
    rows += [gsm8k_row(q, s, g, row=10 + i) for i, (q, s, g) in enumerate(MATH + STEPS)]
    return rows
