-- A game's country for phone numbers written without a country code (`+` or `00`): an
-- ISO 3166-1 alpha-2 code such as 'US'. NULL (the default): such numbers are not sent.
ALTER TABLE games ADD COLUMN default_country TEXT
    CHECK (default_country IS NULL OR (length(default_country) = 2 AND default_country GLOB '[A-Z][A-Z]'));
