"""ArtMatch feedback: votes, likes and (later) ratings and taste profiles. No Telegram or HTTP in here."""
