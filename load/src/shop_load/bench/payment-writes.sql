BEGIN;
INSERT INTO payments (id, user_id, idempotency_key, request_hash, status, amount_cents, currency, card_last4,
    card_token, reservation_id, completed_at)
  VALUES (gen_random_uuid(), gen_random_uuid(), 'ceiling-' || gen_random_uuid()::text, repeat('0', 64), 'captured',
    14900, 'EUR', '4242', repeat('t', 64), gen_random_uuid(), now())
  RETURNING id AS payment_id \gset
INSERT INTO payment_items (payment_id, sku, quantity, unit_price_cents) VALUES (:payment_id, :sku, 1, 14900);
END;
