// Every error code of mailpools, declared once: whether trying again can succeed (retriable: a
// transient failure the runtime retries with back-off; otherwise a poison record, bad input or
// bad configuration), what it means, and what to do. `MailpoolsError` takes one of these keys,
// so a code is never a loose string and its retriability is decided here only. docs/errors.md is
// generated from this table (npm run docs:generate); a test keeps the two in step and checks that
// every code is used.

export interface ErrorEntry {
  readonly retriable: boolean;
  /** What happened, in one sentence (the docs' "means" column). */
  readonly means: string;
  /** What to do: the hint an error carries unless the place it is thrown has a better one. */
  readonly hint: string;
}

export const ERROR_CODES = {
  // Configuration and input
  MAILPOOLS_ERR_CONFIG_INVALID: {
    retriable: false,
    means: 'A setting has a value the service cannot use; it does not start.',
    hint: 'Fix the variable the message names (see docs/configuration.md).',
  },
  MAILPOOLS_ERR_POLICY_INVALID: {
    retriable: false,
    means:
      'The tenant policy file has a field that is wrong; a service does not start with it, and a reload keeps the previous policy.',
    hint: 'Fix the field the message names (see docs/policy.md).',
  },
  MAILPOOLS_ERR_USAGE: {
    retriable: false,
    means: 'A command was called with arguments it does not take.',
    hint: 'Run the command with --help for its usage.',
  },
  MAILPOOLS_ERR_FEED_INPUT: {
    retriable: false,
    means: '`mailpools feed` could not read an input file as events; nothing of that file was produced.',
    hint: 'Fix the file the message names; the line or message number is in the message.',
  },
  MAILPOOLS_ERR_TRACE_QUERY: {
    retriable: false,
    means: 'A message-trace query has a parameter that is wrong.',
    hint: 'Use the parameters `mailpools trace --help` lists.',
  },
  MAILPOOLS_ERR_NOT_FOUND: {
    retriable: false,
    means: 'The trace API was asked for a path it does not serve.',
    hint: 'Only GET /v1/assignments is served.',
  },
  MAILPOOLS_ERR_UNAUTHORISED: {
    retriable: false,
    means: 'A trace API request came without the right bearer token.',
    hint: 'Send Authorization: Bearer <MAILPOOLS_TRACE_API_TOKEN>.',
  },
  MAILPOOLS_ERR_NOT_RESTRICTED: {
    retriable: false,
    means: 'A release named a sender who is not restricted.',
    hint: 'List the restricted senders with `mailpools restricted list`.',
  },
  // Records: poison, dead-lettered with the reason
  MAILPOOLS_ERR_NOT_WIRE_FORMAT: {
    retriable: false,
    means: 'A record is not in the Confluent wire format (magic byte and schema id).',
    hint: 'Produce records through the schema registry (the producer library or `mailpools feed`).',
  },
  MAILPOOLS_ERR_UNKNOWN_SCHEMA_ID: {
    retriable: false,
    means: 'A record names a schema id the registry does not know.',
    hint: 'The record was written against another registry; replay it through this one.',
  },
  MAILPOOLS_ERR_UNEXPECTED_SCHEMA: {
    retriable: false,
    means: 'A record on a topic is of another record type than the topic carries.',
    hint: 'Produce each record type to its own topic (see docs/architecture.md).',
  },
  MAILPOOLS_ERR_INCOMPATIBLE_SCHEMA: {
    retriable: false,
    means: 'A record was written with a schema this reader cannot resolve into its own.',
    hint: 'Schemas evolve BACKWARD only: new fields need defaults.',
  },
  MAILPOOLS_ERR_DECODE_FAILED: {
    retriable: false,
    means: 'A record body does not decode with the schema its id names (truncated or corrupt).',
    hint: 'The original bytes are in the dead-letter topic; fix the producer.',
  },
  MAILPOOLS_ERR_INVALID_RECORD: {
    retriable: false,
    means: 'A value does not fit its Avro schema (a field missing, of the wrong type or out of range).',
    hint: 'Fix the field the message names.',
  },
  MAILPOOLS_ERR_ENCODE_FAILED: {
    retriable: false,
    means: "A stage's output does not fit its schema; the input record is dead-lettered.",
    hint: 'This is a bug in the stage; the input record is kept in the dead-letter topic.',
  },
  MAILPOOLS_ERR_RECORD_TOO_LARGE: {
    retriable: false,
    means: "An output record is larger than the broker's message limit allows.",
    hint: "Lower MAILPOOLS_MAX_RAW_BYTES so that events stay well below the broker's message.max.bytes.",
  },
  MAILPOOLS_ERR_HANDLER: {
    retriable: false,
    means: "A stage's handler failed for this record for good; the records around it flow on.",
    hint: 'The message says why; the record is kept in the dead-letter topic.',
  },
  MAILPOOLS_ERR_LIMITS_SCRIPT: {
    retriable: false,
    means: "limit-counter's counting script failed in Redis.",
    hint: 'This is a bug in limit-counter; the records are dead-lettered with this message.',
  },
  MAILPOOLS_ERR_SPAM_PROFILE_SCRIPT: {
    retriable: false,
    means: "spam-classifier's submitter-profile script failed in Redis.",
    hint: 'This is a bug in spam-classifier; the records are dead-lettered with this message.',
  },
  // Transient: retried with back-off, the partition paused, nothing dropped
  MAILPOOLS_ERR_REDIS_UNAVAILABLE: {
    retriable: true,
    means: 'Redis did not answer.',
    hint: 'Check REDIS_URL and that Redis is up; the partition pauses and retries meanwhile, nothing is dropped.',
  },
  MAILPOOLS_ERR_DATABASE_UNAVAILABLE: {
    retriable: true,
    means: 'PostgreSQL (the message trace) did not answer.',
    hint: 'Check DATABASE_URL and that PostgreSQL is up; the partition pauses and retries meanwhile.',
  },
  MAILPOOLS_ERR_REGISTRY_UNAVAILABLE: {
    retriable: true,
    means: 'The schema registry did not answer.',
    hint: 'Check SCHEMA_REGISTRY_URL and that the registry is up; the partition pauses and retries meanwhile.',
  },
  MAILPOOLS_ERR_REGISTRY_UNAUTHORISED: {
    retriable: true,
    means:
      'The schema registry refused the credentials (retried, so good records are not dead-lettered over a configuration mistake).',
    hint: 'Set SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD to an account the registry accepts.',
  },
  MAILPOOLS_ERR_DNS_TEMPORARY: {
    retriable: true,
    means: 'DNS could not answer for now (a timeout or SERVFAIL).',
    hint: 'Check MAILPOOLS_DNS_SERVERS; the lookup is retried.',
  },
  MAILPOOLS_ERR_TOPIC_SETUP: {
    retriable: true,
    means: 'The topics a stage needs could not be created or seen at start-up.',
    hint: 'Check that the broker is up and allows topic creation by this client.',
  },
  MAILPOOLS_ERR_TRANSIENT: {
    retriable: true,
    means: 'A batch failed for a reason that may pass (a broker error without a code of its own).',
    hint: 'The batch is retried with back-off; the log has the cause.',
  },
  MAILPOOLS_ERR_FENCED: {
    retriable: true,
    means:
      "Another replica took over this partition's transactional id; this one's batch is aborted and redone by the owner.",
    hint: 'Nothing to do: this is how exactly-once survives a rebalance or a zombie.',
  },
  // The platform's MTA
  MAILPOOLS_ERR_DECISION_TIMEOUT: {
    retriable: true,
    means:
      "A submitted message got no pool assignment within the tenant's mta.decisionTimeoutMs (or could not be submitted); the MTA defers it with the policy's 4xx reply.",
    hint: 'The submitter retries; check that the pipeline runs (`mailpools doctor`) and its latency (docs/metrics-and-dashboards.md).',
  },
  MAILPOOLS_ERR_INTERNAL: {
    retriable: false,
    means: 'Something failed that mailpools has no code for.',
    hint: 'This is a bug; the message and the log have the cause.',
  },
  // SRS
  MAILPOOLS_ERR_SRS_NOT_SRS: {
    retriable: false,
    means: 'The address is not an SRS address.',
    hint: 'Give the rewritten envelope sender (…+SRS=… or bounces+SRS=…).',
  },
  MAILPOOLS_ERR_SRS_FORGED: {
    retriable: false,
    means: "The SRS address's hash does not match: it was not made by this platform.",
    hint: 'Refuse the bounce: it is forged (backscatter).',
  },
  MAILPOOLS_ERR_SRS_EXPIRED: {
    retriable: false,
    means: 'The SRS address is older than its validity.',
    hint: "Refuse the bounce; the routing policy's srs.maxAgeDays sets the validity.",
  },
  MAILPOOLS_ERR_SRS_UNKNOWN: {
    retriable: false,
    means: 'The short SRS address names no original the platform kept.',
    hint: 'Refuse the bounce; originals are kept as long as the address is valid.',
  },
  MAILPOOLS_ERR_SRS_NOT_CONFIGURED: {
    retriable: false,
    means: 'SRS has no secret in the routing policy.',
    hint: 'Set routing.srs.secret in the policy file.',
  },
  // The local stack (tools/stack)
  MAILPOOLS_ERR_STACK_USAGE: {
    retriable: false,
    means: '`mailpools stack` was called with a command or option it does not take.',
    hint: 'Run `mailpools stack help`.',
  },
  MAILPOOLS_ERR_STACK_BAD_CONFIG: {
    retriable: false,
    means: 'A setting of the local stack is wrong (a port, a URL).',
    hint: 'Fix the variable the message names (see docs/local-stack.md).',
  },
  MAILPOOLS_ERR_STACK_MISSING_TOOL: {
    retriable: false,
    means: 'A program the stack needs is not installed (Java, Maven, Redis, PostgreSQL).',
    hint: 'Install it as the message says, or point the stack at one already running.',
  },
  MAILPOOLS_ERR_STACK_PORT_IN_USE: {
    retriable: false,
    means: 'A port the stack needs is taken by a process the stack did not start.',
    hint: 'Stop that process, or move the stack to another port with the variable the message names.',
  },
  MAILPOOLS_ERR_STACK_FETCH_FAILED: {
    retriable: false,
    means: 'Kafka or the registry could not be fetched from Maven Central.',
    hint: 'Check the network to Maven Central and run `mailpools stack up` again; Maven resumes.',
  },
  MAILPOOLS_ERR_STACK_FORMAT_FAILED: {
    retriable: false,
    means: "Kafka's storage could not be formatted, or its keystore made.",
    hint: 'Run `mailpools stack down --wipe`, then `up` again.',
  },
  MAILPOOLS_ERR_STACK_PROCESS_EXITED: {
    retriable: false,
    means: 'A part of the stack exited while starting; every part that `up` had started is stopped again.',
    hint: 'Read the end of the log the message names.',
  },
  MAILPOOLS_ERR_STACK_NOT_READY: {
    retriable: false,
    means: 'A part of the stack did not become ready in time, or is not running.',
    hint: 'Read its log; then `mailpools stack down` and `up` again.',
  },
  MAILPOOLS_ERR_STACK_REDIS_UNREACHABLE: {
    retriable: false,
    means: 'The Redis named by REDIS_URL does not answer PING.',
    hint: 'Start that Redis or correct REDIS_URL; or unset it and the stack starts its own.',
  },
  MAILPOOLS_ERR_STACK_POSTGRES_UNREACHABLE: {
    retriable: false,
    means: 'The PostgreSQL named by DATABASE_URL does not answer.',
    hint: 'Start that PostgreSQL or correct DATABASE_URL; or unset it and the stack starts its own.',
  },
  MAILPOOLS_ERR_STACK_POSTGRES_ROOT: {
    retriable: false,
    means: 'PostgreSQL refuses to run as root, and there is no `postgres` user to run it as.',
    hint: 'Run as another user, create a postgres user, or set DATABASE_URL.',
  },
  MAILPOOLS_ERR_STACK_POSTGRES_INIT: {
    retriable: false,
    means: "initdb could not create the stack's PostgreSQL cluster.",
    hint: 'Fix what initdb said (in the message), or delete the data directory and try again.',
  },
  MAILPOOLS_ERR_STACK_STOP_FAILED: {
    retriable: false,
    means: 'A part of the stack survived SIGTERM and SIGKILL.',
    hint: 'Check the process with `ps -p <pid> -o pid,stat,cmd`; it may be stuck in the kernel.',
  },
  MAILPOOLS_ERR_STACK_INTERNAL: {
    retriable: false,
    means: 'The stack failed in a way it has no code for.',
    hint: 'This is a bug in tools/stack; the stack trace follows.',
  },
  // Used by the test fixtures only: a poison record and a transient failure on purpose
  MAILPOOLS_ERR_TEST_POISON: {
    retriable: false,
    means: 'A test fixture refused a record on purpose (it is dead-lettered).',
    hint: 'Expected in tests.',
  },
  MAILPOOLS_ERR_TEST_TRANSIENT: {
    retriable: true,
    means: 'A test fixture failed a batch on purpose (it is retried).',
    hint: 'Expected in tests.',
  },
} as const satisfies Record<`MAILPOOLS_ERR_${string}`, ErrorEntry>;

export type ErrorCode = keyof typeof ERROR_CODES;
