"""Services: what the API and the CLI ask of the store. Each public function is one
transaction's worth of work on a session it is given; the caller (`kizuna.api`, the CLI's
admin verbs) opens and commits the transaction (ADR 0018). Every change writes its audit
entry in that same transaction (ADR 0017)."""
