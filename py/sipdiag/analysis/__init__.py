"""Messages to diagnosis: transactions, registrations, calls, DNS lookups and
network-path evidence, and the findings a support engineer reads about them."""
