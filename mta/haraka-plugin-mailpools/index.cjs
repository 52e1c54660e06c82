'use strict';
// What Haraka loads: its plugin conventions (exports.register, hook_* methods, config/mailpools.ini)
// around the plugin's logic, an ES module in src/ that is loaded once at register().
const constants = require('haraka-constants');

const CODES = {
  ok: constants.ok,
  cont: constants.cont,
  deny: constants.deny,
  denysoft: constants.denysoft,
  delay: constants.delay,
};

exports.register = function () {
  const ini = this.config.get('mailpools.ini');
  this.mta = import('./src/settings.ts')
    .then(({ readSettings }) => Promise.all([readSettings(ini), import('./src/haraka.ts')]))
    .then(([settings, { startMailpoolsMta }]) => startMailpoolsMta(settings));
  this.mta.then(
    () => this.loginfo('connected to the mailpools pipeline'),
    (error) => {
      this.logcrit(`cannot start: ${error?.describe ? error.describe() : error}`);
      process.exitCode = 1;
      process.kill(process.pid, 'SIGTERM');
    },
  );
};

function answer(next, result) {
  switch (result.code) {
    case 'cont':
      return next();
    case 'ok':
      return result.mx === undefined ? next(CODES.ok) : next(CODES.ok, result.mx);
    case 'delay':
      return next(CODES.delay, result.seconds);
    default:
      return next(CODES[result.code], result.message);
  }
}

// Each hook waits for the plugin to be connected, then asks it; a failure defers, never accepts.
function hook(name, fallback) {
  return function (next, subject, ...rest) {
    this.mta
      .then((mta) => mta[name](subject, ...rest))
      .then(
        (result) => answer(next, result),
        (error) => {
          this.logerror(`${name}: ${error?.stack ? error.stack : error}`);
          answer(next, fallback);
        },
      );
  };
}

exports.hook_connect = hook('connect', { code: 'cont' });
exports.hook_queue_outbound = hook('queueOutbound', {
  code: 'denysoft',
  message: '4.3.0 The outbound route could not be decided; please try again later',
});
exports.hook_pre_send_trans_email = hook('preSendTransEmail', { code: 'cont' });
exports.hook_send_email = hook('sendEmail', { code: 'delay', seconds: 60 });
exports.hook_get_mx = hook('getMx', { code: 'denysoft', message: 'mailpools could not choose the route' });
exports.hook_delivered = function (next, hmail) {
  this.mta.then((mta) => mta.delivered(hmail)).finally(() => next());
};

exports.shutdown = function () {
  if (this.mta) this.mta.then((mta) => mta.shutdown()).catch(() => undefined);
};
