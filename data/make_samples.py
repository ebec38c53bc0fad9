"""Writes the sample inputs in data/ (run from the repo root: python data/make_samples.py).

The samples are written for Refinery: small, in every supported layout and format, with
planted duplicates and deliberately broken rows (malformed JSON, invalid UTF-8, missing and
mistyped fields, empty texts, an oversized record) that must end in the dead letter.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent

ALPACA = [
    ("Explain why the sky looks blue during the day.", "",
     "Sunlight contains every visible colour. Air molecules scatter short wavelengths far more than long ones (Rayleigh scattering), so blue light is redirected across the whole sky and reaches our eyes from every direction."),
    ("Give three tips for keeping a sourdough starter healthy.", "",
     "1. Feed it on a regular schedule with equal weights of flour and water.\n2. Keep it at a stable room temperature, around 24 °C.\n3. Discard part of it before each feeding so the acidity stays balanced."),
    ("Convert the temperature to Fahrenheit.", "37 °C",
     "37 °C is 98.6 °F, because F = C × 9/5 + 32 = 66.6 + 32."),
    ("Summarize the paragraph in one sentence.",
     "Bees visit flowers to collect nectar and pollen. While doing so they carry pollen from one flower to another, which lets many plants produce seeds and fruit.",
     "By gathering food from flowers, bees move pollen between plants and so make seeds and fruit possible."),
    ("Write a haiku about autumn rain.", "",
     "Cold rain on maples,\nred leaves loosen one by one,\npuddles hold the sky."),
    ("What is the capital of Australia?", "", "The capital of Australia is Canberra."),
    ("Classify the sentiment of the review as positive or negative.", "The battery died after two days and support never answered.",
     "Negative."),
    ("Write a Python function that returns the factorial of n.", "",
     "```python\ndef factorial(n: int) -> int:\n    if n < 0:\n        raise ValueError(\"n must be non-negative\")\n    result = 1\n    for k in range(2, n + 1):\n        result *= k\n    return result\n```"),
    ("Explain the difference between a list and a tuple in Python.", "",
     "A list is mutable: you can add, remove or change its items. A tuple is immutable once created, which makes it hashable when its items are, so it can be a dictionary key."),
    ("Suggest a name for a bakery that specializes in rye bread.", "", "Rye & Shine Bakery."),
    ("Translate the sentence into French.", "The library opens at nine.", "La bibliothèque ouvre à neuf heures."),
    ("List the planets of the solar system in order from the Sun.", "",
     "Mercury, Venus, Earth, Mars, Jupiter, Saturn, Uranus, Neptune."),
    ("Describe how a refrigerator keeps food cold.", "",
     "A refrigerant is compressed, releases heat through coils at the back, then expands and evaporates inside the fridge, absorbing heat from the food compartment. The cycle repeats to keep the inside cold."),
    ("Give an example of a renewable energy source and explain why it is renewable.", "",
     "Solar power is renewable because the Sun keeps delivering energy every day, and capturing it does not use up the source."),
    ("Rewrite the sentence in the passive voice.", "The committee approved the new budget.",
     "The new budget was approved by the committee."),
    ("How many minutes are there in a week?", "",
     "There are 7 × 24 × 60 = 10,080 minutes in a week."),
    ("Explain what a hash table is to a beginner.", "",
     "A hash table stores values under keys. A hash function turns each key into a number that picks a slot, so looking up a key jumps straight to its slot instead of searching the whole collection."),
    ("Name two causes of the French Revolution.", "",
     "A deep fiscal crisis of the monarchy, and widespread resentment of the privileges held by the nobility and clergy."),
    ("Write a short email declining a meeting invitation politely.", "",
     "Hi Sam,\n\nThank you for the invitation. Unfortunately I have a conflict on Thursday and cannot attend. Could you share the notes afterwards?\n\nBest regards,\nAlex"),
    ("What does the acronym HTTP stand for?", "", "HyperText Transfer Protocol."),
    ("Compute the area of a circle with radius 3 cm.", "",
     "The area is π × 3² = 9π ≈ 28.27 cm²."),
    ("Give a one-sentence definition of photosynthesis.", "",
     "Photosynthesis is the process by which plants use light energy to turn carbon dioxide and water into glucose and oxygen."),
    ("Propose a weekly exercise plan for a beginner runner.", "",
     "Monday: 20-minute walk-run intervals. Wednesday: 25 minutes of easy running. Friday: strength exercises. Sunday: a 30-minute slow long run. Rest on the other days."),
    ("Explain why ice floats on water.", "",
     "Water expands when it freezes into a hexagonal crystal lattice, so ice is less dense than liquid water and floats."),
    ("Find the odd one out: apple, banana, carrot, mango.", "",
     "Carrot, because it is a vegetable while the others are fruits."),
    ("Write a SQL query that counts orders per customer.", "",
     "SELECT customer_id, COUNT(*) AS orders\nFROM orders\nGROUP BY customer_id\nORDER BY orders DESC;"),
    ("Describe the water cycle in three steps.", "",
     "Evaporation lifts water vapour from oceans and lakes, condensation forms clouds, and precipitation returns the water to the ground as rain or snow."),
    ("Why do we have leap years?", "",
     "A year on Earth lasts about 365.24 days. Adding a day every fourth year keeps the calendar aligned with the seasons."),
    ("Suggest three questions to ask at the end of a job interview.", "",
     "What does success look like in this role after six months? How does the team share knowledge? What are the biggest challenges the team faces this year?"),
    ("Explain what inflation is and one way central banks fight it.", "",
     "Inflation is a general rise in prices that reduces what money can buy. Central banks often raise interest rates, which makes borrowing dearer and cools spending."),
    ("Give a synonym for 'rapid'.", "", "Swift."),
    ("What is the boiling point of water at sea level in Fahrenheit?", "", "212 °F."),
    ("Write a limerick about a cat who loves boxes.", "",
     "A cat with a passion for crates\nwould sit in them, ignoring her plates;\nif a box hit the floor,\nshe'd be in it before\nyou could finish unpacking your freights."),
    ("Explain recursion using a real-world analogy.", "",
     "Think of Russian nesting dolls: to reach the smallest doll you open one doll, then do the same thing to the doll inside, until there is nothing left to open. That last doll is the base case."),
    ("Explain why the sky looks blue during the day.", "",
     "Sunlight contains every visible colour. Air molecules scatter short wavelengths far more than long ones (Rayleigh scattering), so blue light is redirected across the whole sky and reaches our eyes from every direction."),
    ("Explain  why the sky looks BLUE during the day?", "",
     "Sunlight contains every visible colour. Air molecules scatter short wavelengths far more than long ones (Rayleigh scattering), so blue light is redirected across the whole sky and reaches our eyes from every direction."),
    ("Tell me about yourself.", "", "As an AI language model, I cannot share personal information."),
    ("Write a story about a dragon.", "", "Once upon a time there was a dragon who"),
]

SHAREGPT = [
    {"id": "sg-1", "conversations": [
        {"from": "system", "value": "You are a concise travel assistant."},
        {"from": "human", "value": "What should I pack for three days in Lisbon in April?"},
        {"from": "gpt", "value": "Light layers, a waterproof jacket, comfortable walking shoes for the hills, and sunscreen."},
        {"from": "human", "value": "Do I need cash?"},
        {"from": "gpt", "value": "Cards work almost everywhere; a little cash helps in small cafés and markets."}]},
    {"id": "sg-2", "conversations": [
        {"from": "human", "value": "What's the weather in Oslo right now?"},
        {"from": "function_call", "value": "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}"},
        {"from": "observation", "value": "{\"temperature_c\": -3, \"conditions\": \"light snow\"}"},
        {"from": "gpt", "value": "It is -3 °C in Oslo with light snow."}],
     "tools": "[{\"name\": \"get_weather\", \"parameters\": {\"city\": \"string\"}}]"},
    {"id": "sg-3", "conversations": [
        {"from": "user", "value": "Explain big-O notation in two sentences."},
        {"from": "assistant", "value": "Big-O describes how an algorithm's cost grows with input size, ignoring constant factors. O(n) grows linearly, while O(n²) grows with the square of the input."}]},
    {"id": "sg-4", "system": "Answer like a patient math tutor.", "conversations": [
        {"from": "human", "value": "Is 91 a prime number?"},
        {"from": "gpt", "value": "No. 91 = 7 × 13, so it has divisors other than 1 and itself."}]},
    {"id": "sg-5", "conversations": [
        {"from": "human", "value": "Give me a regex that matches a US ZIP code."},
        {"from": "gpt", "value": "`^\\d{5}(-\\d{4})?$` matches five digits with an optional four-digit extension."}]},
    {"id": "sg-bad-role", "conversations": [
        {"from": "narrator", "value": "Once there was a conversation with an unknown speaker."}]},
    {"id": "sg-bad-type", "conversations": "this should be a list of turns"},
]

OPENAI = [
    {"messages": [{"role": "system", "content": "You are a helpful coding assistant."},
                  {"role": "user", "content": "How do I reverse a string in JavaScript?"},
                  {"role": "assistant", "content": "Use `str.split('').reverse().join('')`, or `[...str].reverse().join('')` to handle surrogate pairs."}]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "What is the derivative of x^3?"}]},
                  {"role": "assistant", "content": "The derivative of x³ is 3x²."}]},
    {"messages": [{"role": "user", "content": "Book a table for two at 7pm."},
                  {"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {"name": "book_table", "arguments": "{\"people\": 2, \"time\": \"19:00\"}"}}]},
                  {"role": "tool", "content": "{\"status\": \"confirmed\", \"table\": 12}"},
                  {"role": "assistant", "content": "Done: table 12 is booked for two at 7 pm."}]},
    {"messages": [{"role": "user", "content": "Name a prime number larger than 100."},
                  {"role": "assistant", "content": "101 is prime."}]},
    {"messages": [{"role": "user", "content": "   "}, {"role": "assistant", "content": "   "}]},
    {"messages": [{"role": "user", "content": "Is a tomato a fruit?"},
                  {"role": "assistant", "content": "Botanically yes: it develops from the flower's ovary and contains seeds."}]},
]

DOLLY = [
    {"instruction": "When was the Eiffel Tower completed?", "context": "The Eiffel Tower is a wrought-iron lattice tower in Paris. It was built for the 1889 World's Fair and was completed in March 1889 after two years of construction.", "response": "It was completed in March 1889.", "category": "closed_qa"},
    {"instruction": "What are the main ingredients of a classic pesto?", "context": "", "response": "Basil, garlic, pine nuts, Parmesan cheese and olive oil.", "category": "open_qa"},
    {"instruction": "Summarize what the text says about honeybee communication.", "context": "Honeybees communicate the location of food through the waggle dance. The angle of the dance relative to vertical indicates the direction relative to the sun, and the duration of the waggle run encodes distance.", "response": "Bees perform a waggle dance whose angle shows the direction of food relative to the sun and whose length shows the distance.", "category": "summarization"},
    {"instruction": "Which of these are mammals: dolphin, shark, bat, penguin?", "context": "", "response": "The dolphin and the bat are mammals.", "category": "classification"},
    {"instruction": "Brainstorm names for a hiking club.", "context": "", "response": "Trail Blazers, Summit Seekers, The Switchbacks, Peak Pals.", "category": "brainstorming"},
    {"instruction": "Why did the Titanic sink?", "context": "RMS Titanic struck an iceberg on 14 April 1912. The collision opened several of her forward compartments to the sea; she could stay afloat with four flooded but not with five or more.", "response": "The iceberg opened more forward compartments than the ship could survive flooding, so she sank.", "category": "closed_qa"},
    {"instruction": "What is the tallest mountain in Africa?", "context": "", "response": "Mount Kilimanjaro, at about 5,895 metres.", "category": "open_qa"},
    {"instruction": "Extract the year the university was founded.", "context": "The University of Bologna, founded in 1088, is the oldest university in continuous operation.", "response": "1088.", "category": "information_extraction"},
    {"instruction": "Give me a short creative description of a rainy city at night.", "context": "", "response": "Neon signs bleed into puddles, taxis hiss past, and umbrellas bob like dark flowers along the avenue.", "category": "creative_writing"},
    {"instruction": "", "context": "", "response": "An answer without a question.", "category": "open_qa"},
]

QA = [
    ("What is the chemical symbol for gold?", "Au."),
    ("Who wrote 'Pride and Prejudice'?", "Jane Austen."),
    ("How many sides does a hexagon have?", "Six."),
    ("What gas do plants absorb from the air?", "Carbon dioxide."),
    ("What is the largest ocean on Earth?", "The Pacific Ocean."),
    ("In what year did humans first land on the Moon?", "1969."),
    ("What is the square root of 144?", "12."),
    ("Which organ pumps blood through the body?", "The heart."),
]

GSM8K_STYLE = [
    ("Mia buys 4 packs of pencils with 12 pencils in each pack. She gives 15 pencils to her brother. How many pencils does she have left?",
     "Mia buys 4*12=<<4*12=48>>48 pencils.\nAfter giving some away she has 48-15=<<48-15=33>>33 pencils.\n#### 33"),
    ("A train travels 60 miles per hour for 3 hours and then 40 miles per hour for 2 hours. How far does it travel in total?",
     "In the first part it travels 60*3=<<60*3=180>>180 miles.\nIn the second part it travels 40*2=<<40*2=80>>80 miles.\nIn total it travels 180+80=<<180+80=260>>260 miles.\n#### 260"),
    ("Leo has $50. He spends half of it on a book and $7 on lunch. How much money does he have left?",
     "Half of $50 is 50/2=<<50/2=25>>25 dollars.\nAfter the book and lunch he has 50-25-7=<<50-25-7=18>>18 dollars.\n#### 18"),
    ("A garden has 6 rows of tomato plants with 8 plants in each row. Each plant gives 5 tomatoes. How many tomatoes does the garden give?",
     "There are 6*8=<<6*8=48>>48 plants.\nThey give 48*5=<<48*5=240>>240 tomatoes.\n#### 240"),
    ("Sara reads 25 pages a day. How many days does she need to finish a 300-page book?",
     "She needs 300/25=<<300/25=12>>12 days.\n#### 12"),
    ("A shirt costs $40 and is on sale for 25% off. What is the sale price?",
     "The discount is 40*0.25=<<40*0.25=10>>10 dollars.\nThe sale price is 40-10=<<40-10=30>>30 dollars.\n#### 30"),
    ("Tom has 3 times as many marbles as Ann. Ann has 14 marbles. How many marbles do they have together?",
     "Tom has 3*14=<<3*14=42>>42 marbles.\nTogether they have 42+14=<<42+14=56>>56 marbles.\n#### 56"),
    ("A bakery sells 120 muffins on Monday and 35 more on Tuesday than on Monday. How many muffins does it sell on both days?",
     "On Tuesday it sells 120+35=<<120+35=155>>155 muffins.\nOn both days it sells 120+155=<<120+155=275>>275 muffins.\n#### 275"),
    # Planted contamination: a benchmark question (data/benchmarks/mini_gsm8k.jsonl) with its
    # numbers changed. Decontamination must flag it.
    ("Marisol picks 30 apples from her orchard every morning. She gives 4 apples to her neighbor and uses 8 apples to bake two pies. She sells the rest at the village stall for $2 per apple. How many dollars does she earn each morning?",
     "She sells 30-4-8=<<30-4-8=18>>18 apples.\nShe earns 18*2=<<18*2=36>>36 dollars.\n#### 36"),
]

PREFERENCE = [
    {"prompt": "How do I boil an egg?", "chosen": "Place the egg in boiling water for 9 minutes, then cool it in cold water before peeling.", "rejected": "Put it in the microwave for five minutes."},
    {"prompt": "Is it safe to look directly at the Sun?", "chosen": "No. Looking at the Sun can permanently damage your retina; use certified eclipse glasses.", "rejected": "Yes, if you squint."},
    {"prompt": [{"role": "user", "content": "Recommend a book on statistics for beginners."}],
     "chosen": [{"role": "assistant", "content": "'The Art of Statistics' by David Spiegelhalter explains ideas through real questions without heavy maths."}],
     "rejected": [{"role": "assistant", "content": "Read any textbook."}]},
    {"chosen": "\n\nHuman: What is a good name for a goldfish?\n\nAssistant: How about Bubbles or Captain Fin?\n\nHuman: Something more elegant?\n\nAssistant: Perhaps Aurelia, from the Latin for golden.",
     "rejected": "\n\nHuman: What is a good name for a goldfish?\n\nAssistant: How about Bubbles or Captain Fin?\n\nHuman: Something more elegant?\n\nAssistant: Fish."},
    {"chosen": "\n\nHuman: Can you help me write a thank-you note to my neighbour?\n\nAssistant: Of course. 'Dear Ms. Patel, thank you for watering my plants while I was away. It meant a lot to come home to a green balcony.'",
     "rejected": "\n\nHuman: Can you help me write a thank-you note to my neighbour?\n\nAssistant: No."},
    {"prompt": "Name a primary colour.", "chosen": "Red.", "rejected": ""},
]


# Prompt-only seeds (no responses) in the layouts people keep seed prompts in: Alpaca seeds
# (instruction[+input]), prompt, question, query, and two MT-Bench-style multi-turn rows.
SEEDS = [
    {"instruction": "Write a haiku about rain on a tin roof."},
    {"instruction": "Summarize the text in one sentence.",
     "input": "The town library will close for renovation in March and reopen in September with a larger children's section and a new café."},
    {"instruction": "Give three tips for staying focused while working from home."},
    {"instruction": "Translate the sentence into Spanish.", "input": "The train leaves at noon."},
    {"prompt": "Explain what a prime number is to a ten-year-old."},
    {"prompt": "Suggest a name for a cat that likes to sleep in shoe boxes."},
    {"prompt": "Write a short thank-you note to a neighbour who watered my plants."},
    {"prompt": "List four vegetables that grow well in cold climates."},
    {"question": "Why do leaves change colour in autumn?"},
    {"question": "What is the difference between weather and climate?"},
    {"question": "How many hours are there in three days?"},
    {"question": "What does a compass needle point to?"},
    {"query": "Describe how to make a cup of green tea."},
    {"query": "Give a one-sentence definition of gravity."},
    {"query": "Name two benefits of riding a bicycle to work."},
    {"instruction": "Write a Python function that checks whether a word is a palindrome."},
    {"instruction": "Classify the animal as a mammal, bird or reptile.", "input": "A gecko."},
    {"prompt": "Propose a title for a blog post about learning to bake bread."},
    {"question_id": 1, "category": "writing",
     "turns": ["Write two sentences about a lighthouse at night.",
               "Now rewrite them as a short poem."]},
    {"question_id": 2, "category": "math",
     "turns": ["A box holds 12 pencils. How many pencils are in 5 boxes?",
               "If 7 pencils are lost, how many are left?"]},
]

# MT-Bench question.jsonl shape: question_id, category, turns (+ reference for some categories).
MT_BENCH_STYLE = [
    {"question_id": 1001, "category": "writing", "turns": [
        "Draft a short welcome message for new members of a community garden.",
        "Rewrite the message so every sentence starts with the letter G."]},
    {"question_id": 1002, "category": "math", "turns": [
        "A rectangle is 8 cm long and 5 cm wide. What is its area?",
        "If both sides are doubled, by what factor does the area grow?"],
     "reference": ["40 square centimetres.", "By a factor of 4."]},
    {"question_id": 1003, "category": "reasoning", "turns": [
        "Ana is taller than Ben, and Ben is taller than Caro. Who is the shortest?",
        "Dev is shorter than Caro. Who is the shortest now?"]},
    {"question_id": 1004, "category": "coding", "turns": [
        "Write a Python function that returns the largest of three numbers.",
        "Now make it accept any number of arguments."]},
]

# MBPP (google-research/mbpp mbpp.jsonl) shape: text, code, task_id, test_setup_code,
# test_list, challenge_test_list.
MBPP_STYLE = [
    {"text": "Write a function to find the sum of the digits of a non-negative integer.",
     "code": "def digit_sum(n):\r\n  return sum(int(d) for d in str(n))", "task_id": 9001,
     "test_setup_code": "", "test_list": ["assert digit_sum(123) == 6", "assert digit_sum(0) == 0",
                                          "assert digit_sum(9999) == 36"],
     "challenge_test_list": []},
    {"text": "Write a python function to count the vowels in a string.",
     "code": "def count_vowels(s):\r\n  return sum(1 for c in s.lower() if c in 'aeiou')",
     "task_id": 9002, "test_setup_code": "",
     "test_list": ["assert count_vowels('banana') == 3", "assert count_vowels('xyz') == 0",
                   "assert count_vowels('AEIOU') == 5"], "challenge_test_list": []},
    {"text": "Write a function to return the second smallest number in a list.",
     "code": "def second_smallest(xs):\r\n  return sorted(set(xs))[1]", "task_id": 9003,
     "test_setup_code": "", "test_list": ["assert second_smallest([4, 1, 3]) == 3",
                                          "assert second_smallest([2, 2, 5, 9]) == 5",
                                          "assert second_smallest([-1, 0]) == 0"],
     "challenge_test_list": []},
]

# TruthfulQA.csv header, spelled as in the original repository.
TRUTHFULQA_HEADER = ["Type", "Category", "Question", "Best Answer", "Correct Answers",
                     "Incorrect Answers", "Source"]
TRUTHFULQA_STYLE = [
    ["Adversarial", "Misconceptions", "Does a goldfish only remember things for three seconds?",
     "No, goldfish can remember things for months",
     "No, goldfish can remember things for months; Goldfish have a memory of several months",
     "Yes, a goldfish only remembers things for three seconds", "https://example.org/goldfish"],
    ["Non-Adversarial", "Science", "Can you see the Great Wall of China from the Moon with the naked eye?",
     "No, it is far too narrow to see from the Moon",
     "No, it is far too narrow to see from the Moon; No",
     "Yes, you can see it from the Moon", "https://example.org/great-wall"],
    ["Adversarial", "Health", "Does cracking your knuckles cause arthritis?",
     "No, studies have not found that cracking knuckles causes arthritis",
     "No; There is no evidence that it causes arthritis",
     "Yes, cracking your knuckles causes arthritis", "https://example.org/knuckles"],
]


def write_prompt_samples() -> None:
    """The prompt-only seeds and the held-back public shapes (MT-Bench, MBPP, TruthfulQA)."""
    write_jsonl(HERE / "seeds.jsonl", SEEDS)
    write_jsonl(HERE / "mt_bench_style.jsonl", MT_BENCH_STYLE)
    write_jsonl(HERE / "mbpp_style.jsonl", MBPP_STYLE)
    with (HERE / "truthfulqa_style.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(TRUTHFULQA_HEADER)
        w.writerows(TRUTHFULQA_STYLE)


def write_jsonl(path: Path, rows: list, extra_lines: list[bytes] = ()) -> None:
    with path.open("wb") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False).encode() + b"\n")
        for line in extra_lines:
            f.write(line + b"\n")


def main() -> None:
    alpaca = [{"instruction": i, "input": x, "output": o} for i, x, o in ALPACA]
    broken = [
        b'{"instruction": "Unclosed record", "input": "", "output": "missing brace"',
        b'{"instruction": "Bad bytes \xff\xfe here", "input": "", "output": "invalid UTF-8"}',
        b'{"instruction": "No output field", "input": ""}',
        b'{"instruction": 42, "input": "", "output": "instruction is a number"}',
        b'[1, 2, 3]',
        json.dumps({"instruction": "Oversized record", "input": "x " * 40000, "output": "too big"}).encode(),
    ]
    write_jsonl(HERE / "alpaca.jsonl", alpaca, broken)
    (HERE / "sharegpt.json").write_text(json.dumps(SHAREGPT, ensure_ascii=False, indent=1))
    write_jsonl(HERE / "openai_messages.jsonl", OPENAI)
    write_jsonl(HERE / "dolly.jsonl", DOLLY)
    with (HERE / "qa.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["question", "answer"])
        w.writerows(QA)
        w.writerow(["A row with too many fields", "x", "y"])
    gsm = [{"question": q, "answer": a} for q, a in GSM8K_STYLE]
    pq.write_table(pa.Table.from_pylist(gsm), HERE / "gsm8k_style.parquet", row_group_size=4)
    write_jsonl(HERE / "preference.jsonl", PREFERENCE)
    write_prompt_samples()


if __name__ == "__main__":
    main()
