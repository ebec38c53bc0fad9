"""A finished run shown to people: the HTML report (page, data, sections, charts), the dataset
card, console tables, `refinery inspect` and row lineage."""
