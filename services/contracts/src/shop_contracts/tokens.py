"""The claims a users token is checked against: users signs with them, payment verifies them (both settings default to
these; a deployment that changes one sets both: `USERS_JWT_ISSUER` and `PAYMENT_JWT_ISSUER`)."""

JWT_ISSUER = "resilient-shop-users"
JWT_AUDIENCE = "resilient-shop"
