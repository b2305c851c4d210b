"""Data profiles, drift between them, and schema validation: the Python face of the Rust
`profile` and `drift` modules, with their reports (terminal, JSON, HTML)."""
