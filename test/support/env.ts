// The AWS SDK warns on every client construction under Node 20; the tests do not need it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
