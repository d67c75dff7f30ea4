CREATE TABLE uploads (
    id      bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id),
    path    text NOT NULL
);
CREATE INDEX uploads_user_id ON uploads (user_id);
