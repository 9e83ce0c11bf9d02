/**
 * DEVELOPMENT ONLY. A key pair committed to a public repository, so anyone can mint tokens that
 * these keys verify. Used only by the embedded default config (identity.development_keys: true)
 * and by `zt-authz token`; the server refuses to combine it with real issuers and logs a loud
 * warning whenever it is active.
 */
import type { JWK } from 'jose';

export const DEV_ISSUER = 'https://dev.zt-authz.invalid';
export const DEV_AUDIENCE = 'zt-authz-dev';
export const DEV_TOKEN_HEADER = 'authorization';

export const DEV_PRIVATE_JWKS: readonly (JWK & { kid: string; alg: string })[] = [
  {
    "kty": "RSA",
    "n": "9ZHT9-W47nDbfreUcGFrmKGco78RbYJDpEe1DkN4pd9CLQoVXdZvYUjyJUVKmqQAUJpRSWow1Aso4gYfAg-lqy2zOVDSrytzdeN47k0idLWtSgAQBU4e6gFjib0Pk-Sjo5sh34abVj1uDvWZHn7tVbAC4xVjdBmZXRJ4QJiJ6NhfcszqXPskNAVTvtvmtR8ztO5TZVo1UrWAfIHnnfRAp-u5RM-13FfBHn8ZZFgaGxVzEBwvgZ2f9WIyhAOlPBpo-h0yLeCK1AGxWyq0OJGm8EXYgmsxyviQqkchFOCSzSVQncnhzJBtemuDI_f0AhEHkPrZcy5uj2hhkhI0pHlaMQ",
    "e": "AQAB",
    "d": "ZB37HGM0_UlXw5bW1uZw9n5VHVFFqq7kIvL1NwZ9Bqs6EKC-y04khLY3ushAPUHFuxbfMx4vIBQYq-Ww-KcmdN6h5ik0bCQ744FFCWq7NHfpWXUjEvahlefRDBPfaP1bVdVmfvojFIrg9wpcTdmTq06iLrDGpkvVgeOI0VUfTKU1-OxibGyJENSggrk-xVeNODQmQSzAy1pf7q-tkRFFiYBgqHjXFtabAtQB9GqW0AmsgfDCAqqM3UqAUvbc7-V3q-jYf70m2fno6wUS-aErc_a5PNmP1N2S-XPASCy2dHCP5icYbM2by5qPcpP_KwhfdCdct8ZqVgx_IVSC5MwpXQ",
    "p": "_NxBhAnlpAMYKfW03klcI8M5otecI3vfoafWTFwAPqbpRY-n773lqCh_xlA4dHD6w5X5JdA4A67Y-wmMDn9ibJ0XMkE76kf-snPnkpAEtRa_WQVQ5JcPxubxmL-Ly7HYwh6Rj0bTc53vWnAesUc1LYWGF3C9b_lx4F81-yQKuwc",
    "q": "-J5lzzFNE5qZsrn39x8Kz3v1fhOrGWXS1wzbs6ADaJoAwSxNZ0mN7qzJiasPgpxGHxKvpughAQX5cejelm7R1wp-4bp6sbSjZUKNTLC9uMhm74Qgr4pCwdHo5Ncqf951UkW0Qlmu-1M9kvnQ3rYmNO1L1nlBrABCIJpK7uZHmwc",
    "dp": "tuXqTcOK43OJivA6_344s3WGvw8N1WzIeXmZPGpfkvHQUYxzgKnu8A87PQrRiwgdmlNkf8F4gtF6CTsCn4nse3u1R5h_6hphVFsZ6Z1ailIF3jJGLNJHiyuJHV-Pkqr1ipPp3aTxVfOrKdNnn_tNr7uhHlth6xiXEiBMP3f2ewk",
    "dq": "N2W8E8XNgd_B_aQYj5T4KLFbS0OArYEV0NtJnSW7fLRMFL8VZD1shdE0exuFsjm2GjhksVEqAXteULZt2qFI2py5Fv0hV7WDbw28RGlhbOoinZ4YVmT9aQin103mZ2WfSLzFZL9tEQ1EPBq0Itv9eW-ipWCRdIz-LxuSNNdU_0M",
    "qi": "oFOqsg5jLCe6rDWCAufJaurNcWRLTd85lLrhAt0-qVPOb3UywAMDCblD_jSdaFmPBaHYJApGUWIGO2IskkqrcG4WZzVDrHKM2nqKe3vxBAV8dZWuVt3bSF8T1iCMKbVzIXpV_uzPpGarUr0galVKsrzsMVQpuAznGQsbM9r3g8c",
    "kid": "dev-rs256-1",
    "alg": "RS256",
    "use": "sig"
  },
  {
    "kty": "EC",
    "x": "50JoUDBX5jZrTOYRGEfIGYxTEx64NfhyGDTPK_wt_Ko",
    "y": "RB4PLevbuo0ECS3jOCJYTLdVLncgF6HQDMIhqnWi-nw",
    "crv": "P-256",
    "d": "9MQP1lIZv6PWmHddq-8UebIa0kPhM4LLD6xHaR-ThH4",
    "kid": "dev-es256-1",
    "alg": "ES256",
    "use": "sig"
  }
];

/** The public half, as a JWKS document would serve it. */
export const DEV_PUBLIC_JWKS = {
  keys: DEV_PRIVATE_JWKS.map(({ d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub }) => pub),
};
