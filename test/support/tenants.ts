/**
 * The customer tenants of the multi-tenant tests (the web API's allow-list, the daemon's
 * tenants, the stacks' parameters): one id per role, so a test of the handlers, of the CDK
 * stack and of the Azure template speak of the same tenants. Made-up GUIDs, no real
 * tenant's.
 */

/** A customer tenant the multi-tenant API allows. */
export const CUSTOMER_TENANT_A = '1c7d2a64-4b1e-4f0e-9a57-3e5f6a7b8c01';
/** A second allowed customer tenant. */
export const CUSTOMER_TENANT_B = '2d8e3b75-5c2f-4a1f-8b68-4f6a7b8c9d02';
/** A tenant no allow-list names (in the multi-tenant suite, also the guest user's home tenant). */
export const OUTSIDE_TENANT = '3e9f4c86-6d30-4b20-9c79-5a7b8c9d0e03';
