"""The metering ledger's rules, pure (ADR 0023): holds, charges, balances, burn rates."""
