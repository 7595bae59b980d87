-- A child's name and personal number, when given: AES-256-GCM ciphertexts (key version, nonce, ciphertext and
-- tag), bound to the child's id and the field, so a ciphertext copied to another row or field does not open.
ALTER TABLE children
    ADD COLUMN name_sealed            BYTEA,
    ADD COLUMN personal_number_sealed BYTEA;
