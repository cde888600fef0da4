CREATE ROLE alice LOGIN; GRANT SELECT (a, b) ON TABLE "Odd ""Name""", hr.t TO alice, GROUP g WITH GRANT OPTION; GRANT r1, r2 TO u1; REVOKE GRANT OPTION FOR SELECT ON t FROM x; $$a;b$$ -- c;
/* d; */